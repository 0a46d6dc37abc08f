using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Events;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Legacy
{
    public sealed class LegacyImportOptions
    {
        /// <summary>
        /// The zone naive legacy timestamps are read in. Legacy agents write Python's naive
        /// <c>datetime.now().isoformat()</c>; BmadGuard assumes their hosts run in UTC (the default here).
        /// Pass the agents' zone when they did not.
        /// </summary>
        public TimeZoneInfo NaiveTimeZone { get; set; } = TimeZoneInfo.Utc;

        /// <summary>The source recorded on imported events (legacy events have none).</summary>
        public string Source { get; set; } = "legacy";

        public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(10);

        public IProgress<IntegrityProgress>? Progress { get; set; }
    }

    /// <summary>A legacy event the import did not write, and why.</summary>
    public sealed class LegacySkipped
    {
        public LegacySkipped(int index, long offset, string reason)
        {
            Index = index;
            Offset = offset;
            Reason = reason;
        }

        public int Index { get; }
        public long Offset { get; }
        public string Reason { get; }
    }

    /// <summary>What Import-BmadLegacyBus did.</summary>
    public sealed class LegacyImportResult
    {
        internal LegacyImportResult(string file, string store, LegacyScanResult scan, int imported, int alreadyPresent, int adjusted, int wrapped, IReadOnlyList<LegacySkipped> skipped, long? firstSeq, long? lastSeq)
        {
            File = file;
            Store = store;
            EventsInFile = scan.Events.Count;
            Damage = scan.Damage;
            DamageOffset = scan.DamageOffset;
            Imported = imported;
            AlreadyPresent = alreadyPresent;
            TimestampsAdjusted = adjusted;
            DataWrapped = wrapped;
            Skipped = skipped;
            FirstSeq = firstSeq;
            LastSeq = lastSeq;
        }

        public string File { get; }
        public string Store { get; }

        /// <summary>Complete events read from the file (after salvage, when it is damaged).</summary>
        public int EventsInFile { get; }

        public long? DamageOffset { get; }
        public IReadOnlyList<DamagedRegion> Damage { get; }

        /// <summary>Events written to the store by this run.</summary>
        public int Imported { get; }

        /// <summary>Events skipped because an earlier import already wrote them (same deterministic id).</summary>
        public int AlreadyPresent { get; }

        /// <summary>Imported events whose timestamp was raised to keep the log's timestamps non-decreasing.</summary>
        public int TimestampsAdjusted { get; }

        /// <summary>Imported events whose non-object data was wrapped as {"value": …}.</summary>
        public int DataWrapped { get; }

        /// <summary>Events that could not be imported, each with the reason (none is dropped silently).</summary>
        public IReadOnlyList<LegacySkipped> Skipped { get; }

        public long? FirstSeq { get; }
        public long? LastSeq { get; }

        public void WriteJson(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteString("file", File);
            w.WriteString("store", Store);
            w.WriteNumber("eventsInFile", EventsInFile);
            w.WriteNumber("imported", Imported);
            w.WriteNumber("alreadyPresent", AlreadyPresent);
            w.WriteNumber("timestampsAdjusted", TimestampsAdjusted);
            w.WriteNumber("dataWrapped", DataWrapped);
            if (FirstSeq.HasValue)
            {
                w.WriteNumber("firstSeq", FirstSeq.Value);
                w.WriteNumber("lastSeq", LastSeq!.Value);
            }

            if (DamageOffset.HasValue)
            {
                w.WriteNumber("damageOffset", DamageOffset.Value);
            }

            w.WriteStartArray("skipped");
            foreach (var s in Skipped)
            {
                w.WriteStartObject();
                w.WriteNumber("index", s.Index);
                w.WriteNumber("offset", s.Offset);
                w.WriteString("reason", s.Reason);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }
    }

    public enum ExportFormat
    {
        /// <summary><c>{"events":[{"timestamp","event","data"}…]}</c>, as the legacy agents read it.</summary>
        Legacy,
        /// <summary>One event JSON per line (the store's full event: seq, id, timestamp, type, source, correlationId, data).</summary>
        Ndjson,
    }

    /// <summary>Import-BmadLegacyBus and Export-BmadEvent.</summary>
    public static class LegacyTransfer
    {
        private const int BatchSize = 1000;
        public const string ImportLockFileName = "import.lock";

        /// <summary>
        /// Copies a legacy file (salvaging it in memory when damaged; the file itself is not changed) into the store,
        /// keeping each event's time, type (<c>event</c>) and data. Each event gets a deterministic id
        /// (<see cref="LegacyEvent.IdFor"/>), and ids already in the store are skipped, so running it twice
        /// imports nothing the second time. Imports into one store are serialized by <c>import.lock</c>.
        /// Timestamps: naive ones are read in <see cref="LegacyImportOptions.NaiveTimeZone"/>; one earlier than the
        /// log's last timestamp is raised to it (the log never goes backwards in time) and counted in
        /// <see cref="LegacyImportResult.TimestampsAdjusted"/>.
        /// </summary>
        public static LegacyImportResult Import(FileEventStore store, string legacyPath, LegacyImportOptions? options = null, CancellationToken cancellationToken = default)
        {
            options ??= new LegacyImportOptions();
            EventSerializer.ValidateSource(options.Source);
            var scan = LegacyBusFile.Read(legacyPath, options.LockTimeout, cancellationToken);
            string full = Path.GetFullPath(legacyPath);

            using (StoreLock.Acquire(Path.Combine(store.Root, ImportLockFileName), options.LockTimeout, cancellationToken))
            {
                var present = new HashSet<string>(StringComparer.Ordinal);
                foreach (var r in store.Read(new EventQuery(), cancellationToken))
                {
                    if (r.Id.StartsWith("legacy-", StringComparison.Ordinal))
                    {
                        present.Add(r.Id);
                    }
                }

                var occurrences = new Dictionary<string, int>(StringComparer.Ordinal);
                var skipped = new List<LegacySkipped>();
                var batch = new List<(EventDraft, string, DateTimeOffset)>();
                int imported = 0, already = 0, adjusted = 0, wrapped = 0;
                long? firstSeq = null, lastSeq = null;

                void Flush()
                {
                    if (batch.Count == 0)
                    {
                        return;
                    }

                    var records = store.PublishImported(batch, null, cancellationToken);
                    for (int i = 0; i < records.Count; i++)
                    {
                        if (records[i].Timestamp != batch[i].Item3)
                        {
                            adjusted++;
                        }

                        firstSeq ??= records[i].Seq;
                        lastSeq = records[i].Seq;
                    }

                    imported += records.Count;
                    batch.Clear();
                    options.Progress?.Report(new IntegrityProgress("Importing legacy events", full, imported + already + skipped.Count, scan.Events.Count));
                }

                foreach (var e in scan.Events)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    string canonical = e.CanonicalJson();
                    occurrences.TryGetValue(canonical, out int n);
                    occurrences[canonical] = n + 1;
                    string id = LegacyEvent.IdFor(canonical, n);
                    if (present.Contains(id))
                    {
                        already++;
                        continue;
                    }

                    if (!LegacyEvent.TryParseTimestamp(e.Timestamp, options.NaiveTimeZone, out var ts))
                    {
                        skipped.Add(new LegacySkipped(e.Index, e.Offset, $"timestamp '{e.Timestamp}' is not an ISO 8601 time"));
                        continue;
                    }

                    string data = e.DataJson;
                    if (!e.DataIsObject)
                    {
                        data = "{\"value\":" + data + "}";
                        wrapped++;
                    }

                    var draft = EventDraft.FromJson(e.Event, options.Source, null, Encoding.UTF8.GetBytes(data));
                    try
                    {
                        EventSerializer.Prepare(draft, store.Limits, false, id); // validate alone, so one bad event does not sink the batch
                    }
                    catch (BmadGuardException ex)
                    {
                        skipped.Add(new LegacySkipped(e.Index, e.Offset, $"{ex.Code}: {ex.Message}"));
                        if (!e.DataIsObject)
                        {
                            wrapped--;
                        }

                        continue;
                    }

                    batch.Add((draft, id, ts));
                    present.Add(id);
                    if (batch.Count >= BatchSize)
                    {
                        Flush();
                    }
                }

                Flush();
                return new LegacyImportResult(full, store.Root, scan, imported, already, adjusted, wrapped, skipped, firstSeq, lastSeq);
            }
        }

        /// <summary>The legacy timestamp text for a store time: naive UTC with microseconds, like Python's isoformat().</summary>
        public static string LegacyTimestamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff", CultureInfo.InvariantCulture);

        /// <summary>
        /// Export-BmadEvent: writes the events matching <paramref name="query"/> to <paramref name="output"/>, in the
        /// legacy shape (timestamps as naive UTC) or as NDJSON. Streams: one event in memory at a time. Returns the count.
        /// </summary>
        public static long Export(IEventStore store, EventQuery query, Stream output, ExportFormat format, CancellationToken cancellationToken = default)
            => Export(store.Read(query, cancellationToken), output, format, cancellationToken);

        /// <summary>
        /// Writes the given events (e.g. the events piped to Export-BmadEvent) in the legacy shape or as NDJSON,
        /// in the order given. Streams: the sequence is enumerated once. Returns the count.
        /// </summary>
        public static long Export(IEnumerable<EventRecord> events, Stream output, ExportFormat format, CancellationToken cancellationToken = default)
        {
            long count = 0;
            byte[] newline = { (byte)'\n' };
            if (format == ExportFormat.Ndjson)
            {
                foreach (var r in events)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var json = r.Utf8Json.ToArray();
                    output.Write(json, 0, json.Length);
                    output.Write(newline, 0, 1);
                    count++;
                }

                output.Flush();
                return count;
            }

            var options = new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            WriteText(output, "{\n  \"events\": [");
            foreach (var r in events)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var buffer = new MemoryStream();
                using (var w = new Utf8JsonWriter(buffer, options))
                {
                    w.WriteStartObject();
                    w.WriteString("timestamp", LegacyTimestamp(r.Timestamp));
                    w.WriteString("event", r.Type);
                    w.WritePropertyName("data");
                    using (var doc = JsonDocument.Parse(r.DataJson))
                    {
                        doc.RootElement.WriteTo(w);
                    }

                    w.WriteEndObject();
                }

                string text = Encoding.UTF8.GetString(buffer.ToArray()).Replace("\r\n", "\n").Replace("\n", "\n    ");
                WriteText(output, (count == 0 ? "\n    " : ",\n    ") + text);
                count++;
            }

            WriteText(output, count == 0 ? "]\n}" : "\n  ]\n}");
            output.Flush();
            return count;
        }

        /// <summary>Exports to a file atomically: a temporary file in the same directory, fsynced, renamed over <paramref name="path"/>.</summary>
        public static long ExportToFile(IEventStore store, EventQuery query, string path, ExportFormat format, IStorageIO? io = null, CancellationToken cancellationToken = default)
            => ExportToFile(store.Read(query, cancellationToken), path, format, io, cancellationToken);

        /// <summary>Exports the given events to a file atomically (see the store overload).</summary>
        public static long ExportToFile(IEnumerable<EventRecord> events, string path, ExportFormat format, IStorageIO? io = null, CancellationToken cancellationToken = default)
        {
            io ??= OsStorageIO.Instance;
            string full = Path.GetFullPath(path);
            if (Directory.Exists(full))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, $"'{full}' is a directory; give a file name to export to.", full);
            }

            string dir = Path.GetDirectoryName(full)!;
            if (!Directory.Exists(dir))
            {
                throw new BmadGuardException(ErrorCodes.FileNotFound, FailureKind.InvalidInput, $"The directory of '{full}' does not exist.", full);
            }

            string temp = Path.Combine(dir, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N").Substring(0, 8) + ".tmp");
            long count;
            // Exporting over a guarded bus file (its <file>.lock exists): take the agents' lock and keep the old
            // contents as a generation, as every guarded write does.
            using var guard = File.Exists(LegacyFiles.LockPath(full)) ? StoreLock.Acquire(LegacyFiles.LockPath(full), TimeSpan.FromSeconds(10), cancellationToken) : null;
            if (guard != null && File.Exists(full))
            {
                LegacyBusFile.WriteGeneration(full, LegacyFiles.ReadAll(full), io);
            }

            try
            {
                using (var stream = io.OpenForWrite(temp, createNew: true))
                {
                    var buffered = new BufferedStream(stream, 1 << 16); // not disposed: that would close the stream before the fsync
                    count = Export(events, buffered, format, cancellationToken);
                    buffered.Flush();

                    // fsync before the rename, or a crash could leave the new name on an empty file.
                    io.Sync(stream);
                }

                io.Move(temp, full);
            }
            catch
            {
                try
                {
                    File.Delete(temp);
                }
                catch (IOException)
                {
                }

                throw;
            }

            io.SyncDirectory(dir); // the rename is durable once the directory entry is
            return count;
        }

        private static void WriteText(Stream s, string text)
        {
            byte[] b = Encoding.UTF8.GetBytes(text);
            s.Write(b, 0, b.Length);
        }
    }
}
