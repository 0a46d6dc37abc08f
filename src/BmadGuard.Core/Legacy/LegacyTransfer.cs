using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
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

        /// <summary>
        /// Imported elements that lack a field the bus writes (e.g. no "event"); those without a usable event name are
        /// stored as <see cref="LegacyEvent.UntypedType"/>.
        /// </summary>
        public int Incomplete { get; internal set; }

        public void WriteJson(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteString("file", File);
            w.WriteString("store", Store);
            w.WriteNumber("eventsInFile", EventsInFile);
            w.WriteNumber("incomplete", Incomplete);
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
            return ImportScans(store, new[] { (full, scan) }, options, cancellationToken)[0];
        }

        /// <summary>
        /// import-legacy --recover (Import-BmadLegacyBus -Recover): gathers what the old bus and BmadGuard left beside a
        /// legacy file — the file itself, the bus's <c>&lt;file&gt;.backup</c>, BmadGuard's backup generations
        /// (<c>.bmadguard-generations/</c>), leftover temp copies (<c>.&lt;file&gt;.*.tmp</c>, <c>&lt;file&gt;.tmp</c>), repair's
        /// quarantined originals (<c>.bmadguard-quarantine/</c>), and in the store the monitor's quarantined copies and its
        /// known-good copy — salvages each (damaged ones too), and imports every event not already in the store, in time
        /// order, with the same deterministic ids as <see cref="Import"/> (so it is idempotent, and an event found in
        /// several artefacts is imported once). Nothing is changed outside the store. One result per artefact read.
        /// </summary>
        public static IReadOnlyList<LegacyImportResult> Recover(FileEventStore store, string legacyPath, LegacyImportOptions? options = null, CancellationToken cancellationToken = default)
        {
            options ??= new LegacyImportOptions();
            EventSerializer.ValidateSource(options.Source);
            if (string.IsNullOrWhiteSpace(legacyPath))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, "No legacy bus file was given.");
            }

            string full = Path.GetFullPath(legacyPath);
            if (Directory.Exists(full))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, $"'{full}' is a directory, not a legacy bus file.", full);
            }

            var sources = RecoverySources(full, store.Root);
            if (sources.Count == 0)
            {
                throw new BmadGuardException(ErrorCodes.FileNotFound, FailureKind.InvalidInput,
                    $"Neither '{full}' nor any copy of it (.backup, generations, temp files, quarantined copies) exists.", full);
            }

            var scans = new List<(string, LegacyScanResult)>();
            foreach (string source in sources)
            {
                cancellationToken.ThrowIfCancellationRequested();
                // The live file is read under the agents' lock; the artefacts are BmadGuard's or left behind: read as they are.
                var scan = source == full ? LegacyBusFile.Read(full, options.LockTimeout, cancellationToken) : LegacyScanner.Scan(LegacyFiles.ReadAll(source), cancellationToken);
                scans.Add((source, scan));
            }

            return ImportScans(store, scans, options, cancellationToken);
        }

        /// <summary>The live file first, then every artefact that may hold its events (see <see cref="Recover"/>).</summary>
        public static IReadOnlyList<string> RecoverySources(string file, string? storeRoot)
        {
            string full = Path.GetFullPath(file);
            string dir = Path.GetDirectoryName(full)!;
            string name = Path.GetFileName(full);
            var result = new List<string>();
            void Add(string p)
            {
                if (File.Exists(p) && !result.Contains(p, StringComparer.Ordinal))
                {
                    result.Add(p);
                }
            }

            void AddAll(string directory, string pattern)
            {
                if (Directory.Exists(directory))
                {
                    var found = Directory.GetFiles(directory, pattern);
                    Array.Sort(found, StringComparer.Ordinal);
                    Array.Reverse(found); // newest first (the names carry UTC stamps)
                    foreach (string f in found)
                    {
                        Add(f);
                    }
                }
            }

            Add(full);
            Add(full + ".backup");
            var generations = LegacyBusFile.ListGenerations(full).ToList();
            generations.Reverse();
            generations.ForEach(Add);
            AddAll(dir, "." + name + ".*.tmp");
            AddAll(dir, name + ".tmp");
            AddAll(dir, name + ".*.tmp");
            AddAll(LegacyFiles.QuarantineDir(full), name + ".*.damaged");
            if (storeRoot != null)
            {
                AddAll(Path.Combine(storeRoot, StorePaths.QuarantineDirName), "*-" + name + ".damaged");
                Add(new Monitoring.GuardedFile(full, storeRoot).KnownGoodPath);
            }

            return result;
        }

        /// <summary>
        /// The one import mechanism: the events of each scan, under the store's import lock, skipping ids already in the
        /// store or met in an earlier scan. Several scans are imported in time order (stable), one result per scan.
        /// </summary>
        private static IReadOnlyList<LegacyImportResult> ImportScans(FileEventStore store, IReadOnlyList<(string Path, LegacyScanResult Scan)> scans, LegacyImportOptions options, CancellationToken cancellationToken)
        {
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

                int n = scans.Count;
                var skipped = new List<LegacySkipped>[n];
                var imported = new int[n];
                var already = new int[n];
                var adjusted = new int[n];
                var wrapped = new int[n];
                var untyped = new int[n];
                var firstSeq = new long?[n];
                var lastSeq = new long?[n];
                var candidates = new List<(EventDraft Draft, string Id, DateTimeOffset Time, int Source)>();
                int total = scans.Sum(x => x.Scan.Events.Count);
                for (int s = 0; s < n; s++)
                {
                    skipped[s] = new List<LegacySkipped>();
                    var occurrences = new Dictionary<string, int>(StringComparer.Ordinal);
                    foreach (var e in scans[s].Scan.Events)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        string canonical = e.CanonicalJson();
                        occurrences.TryGetValue(canonical, out int k);
                        occurrences[canonical] = k + 1;
                        string id = LegacyEvent.IdFor(canonical, k);
                        if (present.Contains(id))
                        {
                            already[s]++;
                            continue;
                        }

                        if (!LegacyEvent.TryParseTimestamp(e.Timestamp, options.NaiveTimeZone, out var ts))
                        {
                            skipped[s].Add(new LegacySkipped(e.Index, e.Offset, $"timestamp '{e.Timestamp}' is not an ISO 8601 time"));
                            continue;
                        }

                        string data = e.DataJson;
                        bool wrap = !e.DataIsObject;
                        if (wrap)
                        {
                            data = "{\"value\":" + data + "}";
                        }

                        string type = e.Event;
                        if (e.Incomplete != null)
                        {
                            // A complete object without every field the bus writes (e.g. no "event"): kept, under its
                            // event name when it has a usable one, else under the documented untyped type.
                            try
                            {
                                EventSerializer.ValidateType(type);
                            }
                            catch (BmadGuardException)
                            {
                                type = LegacyEvent.UntypedType;
                            }
                        }

                        var draft = EventDraft.FromJson(type, options.Source, null, Encoding.UTF8.GetBytes(data));
                        try
                        {
                            EventSerializer.Prepare(draft, store.Limits, false, id); // validate alone, so one bad event does not sink the batch
                        }
                        catch (BmadGuardException ex)
                        {
                            skipped[s].Add(new LegacySkipped(e.Index, e.Offset, $"{ex.Code}: {ex.Message}"));
                            continue;
                        }

                        wrapped[s] += wrap ? 1 : 0;
                        untyped[s] += e.Incomplete != null ? 1 : 0;
                        candidates.Add((draft, id, ts, s));
                        present.Add(id);
                    }
                }

                if (n > 1)
                {
                    // Artefacts overlap in time: the log gets them in time order (a stable sort keeps file order on ties).
                    candidates = candidates.Select((c, i) => (c, i)).OrderBy(x => x.c.Time.UtcTicks).ThenBy(x => x.i).Select(x => x.c).ToList();
                }

                int done = 0;
                for (int start = 0; start < candidates.Count; start += BatchSize)
                {
                    var slice = candidates.GetRange(start, Math.Min(BatchSize, candidates.Count - start));
                    var records = store.PublishImported(slice.Select(c => (c.Draft, c.Id, c.Time)).ToList(), null, cancellationToken);
                    for (int i = 0; i < records.Count; i++)
                    {
                        int s = slice[i].Source;
                        if (records[i].Timestamp != slice[i].Time)
                        {
                            adjusted[s]++;
                        }

                        firstSeq[s] ??= records[i].Seq;
                        lastSeq[s] = records[i].Seq;
                        imported[s]++;
                    }

                    done += records.Count;
                    options.Progress?.Report(new IntegrityProgress("Importing legacy events", scans[0].Path, done, total));
                }

                var results = new List<LegacyImportResult>(n);
                for (int s = 0; s < n; s++)
                {
                    results.Add(new LegacyImportResult(scans[s].Path, store.Root, scans[s].Scan, imported[s], already[s], adjusted[s], wrapped[s], skipped[s], firstSeq[s], lastSeq[s]) { Incomplete = untyped[s] });
                }

                return results;
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
#if NET8_0_OR_GREATER
                // Over an existing file (a bus file the agents read, perhaps as other users): keep its mode, as
                // publish-legacy and repair do. A new file keeps the temp file's owner-only mode.
                if (!OperatingSystem.IsWindows() && File.Exists(full))
                {
                    File.SetUnixFileMode(temp, File.GetUnixFileMode(full));
                }
#endif

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
