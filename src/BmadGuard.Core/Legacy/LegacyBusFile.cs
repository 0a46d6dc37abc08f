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
    /// <summary>How a guarded legacy write runs.</summary>
    public sealed class LegacyWriteOptions
    {
        /// <summary>How long to wait for the agents' lock (<c>&lt;file&gt;.lock</c>).</summary>
        public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>Backup generations kept per file (the oldest beyond this are removed). At least 1.</summary>
        public int KeepGenerations { get; set; } = LegacyFiles.DefaultKeepGenerations;

        public IStorageIO IO { get; set; } = OsStorageIO.Instance;
    }

    /// <summary>What a guarded publish did.</summary>
    public sealed class LegacyPublishResult
    {
        internal LegacyPublishResult(string path, string timestamp, string eventName, string dataJson, int eventCount, string? generation, IReadOnlyList<string> removedGenerations, bool created)
        {
            Path = path;
            Timestamp = timestamp;
            Event = eventName;
            DataJson = dataJson;
            EventCount = eventCount;
            GenerationPath = generation;
            RemovedGenerations = removedGenerations;
            Created = created;
        }

        public string Path { get; }
        public string Timestamp { get; }
        public string Event { get; }
        public string DataJson { get; }

        /// <summary>Events in the file after the publish.</summary>
        public int EventCount { get; }

        /// <summary>The backup generation taken before the write (null when the file was created).</summary>
        public string? GenerationPath { get; }

        /// <summary>Old generations removed by the retention.</summary>
        public IReadOnlyList<string> RemovedGenerations { get; }

        public bool Created { get; }
    }

    /// <summary>What a legacy file repair (salvage) did.</summary>
    public sealed class LegacyRepairResult
    {
        internal LegacyRepairResult(string path, bool wasHealthy, bool written, int recovered, LegacyScanResult scan, string? quarantinePath, int? line, int? column)
        {
            Path = path;
            WasHealthy = wasHealthy;
            Written = written;
            RecoveredEvents = recovered;
            Damage = scan.Damage;
            DamageOffset = scan.DamageOffset;
            DamageLine = line;
            DamageColumn = column;
            QuarantinePath = quarantinePath;
            OriginalBytes = scan.Length;
            var incomplete = new List<LegacyEvent>();
            foreach (var e in scan.Events)
            {
                if (e.Incomplete != null)
                {
                    incomplete.Add(e);
                }
            }

            IncompleteEvents = incomplete;
        }

        /// <summary>
        /// Elements kept although they lack a field the bus writes (e.g. no "event"): the agents wrote them and their bus
        /// returns them. Reported as warnings.
        /// </summary>
        public IReadOnlyList<LegacyEvent> IncompleteEvents { get; }

        public string Path { get; }

        /// <summary>True when the file was already valid: nothing was changed.</summary>
        public bool WasHealthy { get; }

        /// <summary>True when the repaired file was written.</summary>
        public bool Written { get; }

        public int RecoveredEvents { get; }

        public long OriginalBytes { get; }

        /// <summary>Where the damage starts in the original file.</summary>
        public long? DamageOffset { get; }

        public int? DamageLine { get; }

        public int? DamageColumn { get; }

        /// <summary>Every stretch of the original that held no recoverable event.</summary>
        public IReadOnlyList<DamagedRegion> Damage { get; }

        /// <summary>The damaged original, kept whole.</summary>
        public string? QuarantinePath { get; }

        public void WriteJson(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteString("file", Path);
            w.WriteBoolean("wasHealthy", WasHealthy);
            w.WriteBoolean("written", Written);
            w.WriteNumber("recoveredEvents", RecoveredEvents);
            w.WriteNumber("originalBytes", OriginalBytes);
            if (DamageOffset.HasValue)
            {
                w.WriteStartObject("damageStart");
                w.WriteNumber("offset", DamageOffset.Value);
                w.WriteNumber("line", DamageLine ?? 0);
                w.WriteNumber("column", DamageColumn ?? 0);
                w.WriteEndObject();
            }

            w.WriteStartArray("damage");
            foreach (var d in Damage)
            {
                w.WriteStartObject();
                w.WriteNumber("offset", d.Offset);
                w.WriteNumber("length", d.Length);
                w.WriteString("reason", d.Reason);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("warnings");
            foreach (var e in IncompleteEvents)
            {
                w.WriteStartObject();
                w.WriteString("code", Integrity.FindingCodes.LegacyEventIncomplete);
                w.WriteNumber("index", e.Index);
                w.WriteNumber("offset", e.Offset);
                w.WriteString("message", $"Element #{e.Index} {e.Incomplete}; kept as it is.");
                w.WriteEndObject();
            }

            w.WriteEndArray();
            if (QuarantinePath != null)
            {
                w.WriteString("quarantine", QuarantinePath);
            }

            w.WriteEndObject();
        }
    }

    /// <summary>
    /// Writes to a legacy bus file safely while the Python agents still use it: under their lock
    /// (<c>flock(LOCK_EX)</c> on <c>&lt;file&gt;.lock</c>, which <see cref="StoreLock"/> takes), by atomic replace
    /// (temp file in the same directory, fsync, rename, fsync the directory), after a timestamped backup
    /// generation in <c>.bmadguard-generations/</c>.
    /// </summary>
    public static class LegacyBusFile
    {
        private static readonly JsonWriterOptions IndentedWriter = new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

        /// <summary>
        /// Reads and scans a legacy file under the agents' lock (the lock is held only for the read). Like every read,
        /// it never creates a missing lock file: a missing one is evidence that the bus deletes it (see
        /// <see cref="LegacyLocking"/>), which a later publish must still see.
        /// </summary>
        public static LegacyScanResult Read(string path, TimeSpan lockTimeout, CancellationToken cancellationToken = default)
        {
            string full = LegacyFiles.RequireFile(path, "legacy bus file");
            byte[] bytes;
            string lockPath = LegacyFiles.LockPath(full);
            if (!File.Exists(lockPath))
            {
                bytes = LegacyFiles.ReadAll(full);
                return LegacyScanner.Scan(bytes, cancellationToken);
            }

            using (StoreLock.Acquire(lockPath, lockTimeout, cancellationToken))
            {
                bytes = LegacyFiles.ReadAll(full);
            }

            return LegacyScanner.Scan(bytes, cancellationToken);
        }

        /// <summary>
        /// Appends one event <c>{"timestamp","event","data"}</c>. The file must be valid (a damaged file is refused:
        /// repair it first, so no write ever builds on damage). Creates the file when it does not exist.
        /// The timestamp is the current UTC time written naive, as the legacy agents write theirs.
        /// </summary>
        public static LegacyPublishResult Publish(string path, string eventName, string? dataJson, LegacyWriteOptions? options = null, CancellationToken cancellationToken = default)
        {
            options ??= new LegacyWriteOptions();
            if (options.KeepGenerations < 1)
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, "KeepGenerations must be at least 1: a backup generation is taken before every write.");
            }

            EventSerializer.ValidateType(eventName);
            string full = Path.GetFullPath(path);
            if (Directory.Exists(full))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, $"'{full}' is a directory, not a legacy bus file.", full);
            }

            string dir = Path.GetDirectoryName(full)!;
            if (!Directory.Exists(dir))
            {
                throw new BmadGuardException(ErrorCodes.FileNotFound, FailureKind.InvalidInput, $"The directory of '{full}' does not exist.", full);
            }

            byte[] data = ValidateData(dataJson);
            string timestamp = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff", CultureInfo.InvariantCulture);
            byte[] eventText = FormatEvent(timestamp, eventName, data);

            using (var held = StoreLock.Acquire(LegacyFiles.LockPath(full), options.LockTimeout, cancellationToken))
            {
                bool exists = File.Exists(full);
                // A writer that deletes its lock file after LOCK_UN (the old agents' bus) leaves other writers
                // holding locks on files no one else opens: nobody is excluded, and whatever we write can be
                // overwritten by a writer that read the file before us. Evidence of it: the file we locked was
                // replaced while we waited, or the lock file had to be created although BmadGuard wrote this
                // file before (BmadGuard never deletes a lock file). Then nothing is written.
                LegacyLocking.RefuseIfLockFileDeleted(full, held, exists, "nothing was written");
                byte[] current = exists ? LegacyFiles.ReadAll(full) : Array.Empty<byte>();
                byte[] updated;
                int count;
                if (!exists)
                {
                    updated = Concat(Encoding.UTF8.GetBytes("{\n  \"events\": [\n    "), eventText, Encoding.UTF8.GetBytes("\n  ]\n}"));
                    count = 1;
                }
                else
                {
                    var report = JsonFileVerifier.VerifyBytes(full, current, JsonFileCheck.LegacyBus);
                    if (!report.Healthy)
                    {
                        IntegrityFinding? first = null;
                        foreach (var f in report.Findings)
                        {
                            if (f.Severity == FindingSeverity.Error)
                            {
                                first = f;
                                break;
                            }
                        }

                        throw new BmadGuardException(ErrorCodes.LegacyFileDamaged, FailureKind.StoreProblem,
                            $"'{full}' is damaged, so nothing was written: {first?.Message} Run 'bmadguard repair --file {full}' (Repair-BmadStore -Path) first.", full, first?.Offset);
                    }

                    updated = Splice(current, eventText, out count);
                }

                string? generation = null;
                var removed = new List<string>();
                if (exists)
                {
                    // The generation is durable (AtomicFile fsyncs it and its directory) before the file is
                    // replaced: after a crash at any point, the previous contents exist in one place or the other.
                    generation = WriteGeneration(full, current, options.IO);
                }

                LegacyLocking.RefuseIfLockFileDeleted(full, held, exists, "nothing was written", checkOnlyPath: true);
                ReplaceKeepingMode(options.IO, full, updated);
                if (exists)
                {
                    removed.AddRange(ApplyRetention(full, options.KeepGenerations));
                }

                // Still holding the lock: if the lock file was deleted while we wrote, another writer may hold
                // a different lock and replace the file with a copy read before ours. The event is in the file
                // now, but it cannot be kept, so it is not acknowledged.
                LegacyLocking.RefuseIfLockFileDeleted(full, held, exists, "the event was written but another writer may overwrite it, so it is not acknowledged", checkOnlyPath: true);

                return new LegacyPublishResult(full, timestamp, eventName, Encoding.UTF8.GetString(data), count, generation, removed, !exists);
            }
        }

        private static byte[] ValidateData(string? dataJson)
        {
            if (string.IsNullOrWhiteSpace(dataJson))
            {
                return Encoding.UTF8.GetBytes("{}");
            }

            try
            {
                using var doc = JsonDocument.Parse(dataJson!, new JsonDocumentOptions { AllowDuplicateProperties = false, MaxDepth = EventLimits.DefaultMaxDepth });
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                {
                    throw new BmadGuardException(ErrorCodes.DataNotObject, FailureKind.InvalidInput, $"Event data must be a JSON object, not {JsonFileVerifier.Kind(doc.RootElement)}.");
                }

                var buffer = new MemoryStream();
                using (var w = new Utf8JsonWriter(buffer, IndentedWriter))
                {
                    doc.RootElement.WriteTo(w);
                }

                return buffer.ToArray();
            }
            catch (JsonException ex)
            {
                throw new BmadGuardException(ErrorCodes.InvalidData, FailureKind.InvalidInput, $"Event data is not valid JSON: {ex.Message}", inner: ex);
            }
        }

        /// <summary>The event as Python's json.dump(indent=2) lays out an element of "events" (4-space base indent).</summary>
        private static byte[] FormatEvent(string timestamp, string eventName, byte[] indentedData)
        {
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer, IndentedWriter))
            {
                w.WriteStartObject();
                w.WriteString("timestamp", timestamp);
                w.WriteString("event", eventName);
                w.WritePropertyName("data");
                using (var doc = JsonDocument.Parse(indentedData))
                {
                    doc.RootElement.WriteTo(w);
                }

                w.WriteEndObject();
            }

            // JSON strings hold no raw newlines, so every newline is layout: indent the continuation lines.
            string text = Encoding.UTF8.GetString(buffer.ToArray()).Replace("\r\n", "\n").Replace("\n", "\n    ");
            return Encoding.UTF8.GetBytes(text);
        }

        /// <summary>Inserts the event after the last element of "events" (bytes before and after are kept as they are).</summary>
        private static byte[] Splice(byte[] current, byte[] eventText, out int count)
        {
            int bom = current.Length >= 3 && current[0] == 0xEF && current[1] == 0xBB && current[2] == 0xBF ? 3 : 0;
            var offsets = LegacyScanner.ElementOffsets(current, bom);
            count = offsets.Count + 1;
            var reader = new Utf8JsonReader(new ReadOnlySpan<byte>(current, bom, current.Length - bom));
            int depth = 0;
            bool inEvents = false;
            int arrayOpen = -1, lastEnd = -1;
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName when depth == 1 && reader.ValueTextEquals("events"):
                        inEvents = true;
                        break;
                    case JsonTokenType.StartArray when depth == 1 && inEvents:
                        arrayOpen = bom + (int)reader.TokenStartIndex;
                        depth++;
                        break;
                    case JsonTokenType.EndArray when depth == 2 && inEvents:
                        if (lastEnd < 0)
                        {
                            // empty array: "[" … "]"
                            return Concat(Slice(current, 0, arrayOpen + 1), Encoding.UTF8.GetBytes("\n    "), eventText, Encoding.UTF8.GetBytes("\n  "), Slice(current, bom + (int)reader.TokenStartIndex, current.Length));
                        }

                        return Concat(Slice(current, 0, lastEnd), Encoding.UTF8.GetBytes(",\n    "), eventText, Slice(current, lastEnd, current.Length));
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        depth++;
                        break;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        depth--;
                        if (depth == 2 && inEvents)
                        {
                            lastEnd = bom + (int)reader.BytesConsumed;
                        }

                        break;
                    default:
                        if (depth == 2 && inEvents && reader.TokenType != JsonTokenType.PropertyName)
                        {
                            lastEnd = bom + (int)reader.BytesConsumed; // a scalar element (not an event, but keep it)
                        }

                        break;
                }
            }

            throw new BmadGuardException(ErrorCodes.LegacyFileDamaged, FailureKind.StoreProblem, "The file has no top-level \"events\" array to append to.");
        }

        private static byte[] Slice(byte[] b, int from, int to)
        {
            var r = new byte[to - from];
            Buffer.BlockCopy(b, from, r, 0, r.Length);
            return r;
        }

        private static byte[] Concat(params byte[][] parts)
        {
            int n = 0;
            foreach (var p in parts)
            {
                n += p.Length;
            }

            var r = new byte[n];
            int at = 0;
            foreach (var p in parts)
            {
                Buffer.BlockCopy(p, 0, r, at, p.Length);
                at += p.Length;
            }

            return r;
        }

        // ------------------------------------------------------------------ generations

        /// <summary>Writes <paramref name="contents"/> as a new generation of <paramref name="file"/>; returns its path.</summary>
        public static string WriteGeneration(string file, byte[] contents, IStorageIO? io = null)
        {
            io ??= OsStorageIO.Instance;
            string dir = LegacyFiles.GenerationsDir(file);
            io.CreateDirectory(dir);
            string baseName = Path.GetFileName(file) + "." + LegacyFiles.FileStamp(DateTime.UtcNow);
            string path = Path.Combine(dir, baseName + ".json");
            for (int i = 1; File.Exists(path); i++)
            {
                path = Path.Combine(dir, baseName + "-" + i.ToString(CultureInfo.InvariantCulture) + ".json");
            }

            AtomicFile.Write(io, path, contents);
            return path;
        }

        /// <summary>The generations of a file, oldest first.</summary>
        public static IReadOnlyList<string> ListGenerations(string file)
        {
            string dir = LegacyFiles.GenerationsDir(Path.GetFullPath(file));
            var result = new List<string>();
            if (!Directory.Exists(dir))
            {
                return result;
            }

            string prefix = Path.GetFileName(file) + ".";
            foreach (string g in Directory.EnumerateFiles(dir, "*.json"))
            {
                string name = Path.GetFileName(g);
                if (name.StartsWith(prefix, StringComparison.Ordinal) && name.Length > prefix.Length + 5 && char.IsDigit(name[prefix.Length]))
                {
                    result.Add(g);
                }
            }

            result.Sort(StringComparer.Ordinal); // UTC stamps sort by time
            return result;
        }

        /// <summary>Removes the oldest generations beyond <paramref name="keep"/>; returns what it removed.</summary>
        public static IReadOnlyList<string> ApplyRetention(string file, int keep)
        {
            var all = ListGenerations(file);
            var removed = new List<string>();
            for (int i = 0; i < all.Count - keep; i++)
            {
                try
                {
                    File.Delete(all[i]);
                    removed.Add(all[i]);
                }
                catch (IOException)
                {
                }
            }

            return removed;
        }

        // ------------------------------------------------------------------ repair

        /// <summary>
        /// Repair-BmadStore -Path: under the agents' lock, salvages every complete event of a damaged legacy file,
        /// keeps the damaged original whole in <c>.bmadguard-quarantine/</c> (fsynced first), then replaces the
        /// file atomically with the recovered events. A valid file is left untouched.
        /// </summary>
        public static LegacyRepairResult Repair(string path, LegacyWriteOptions? options = null, CancellationToken cancellationToken = default)
        {
            options ??= new LegacyWriteOptions();
            string full = LegacyFiles.RequireFile(path, "legacy bus file");
            using (StoreLock.Acquire(LegacyFiles.LockPath(full), options.LockTimeout, cancellationToken))
            {
                byte[] bytes = LegacyFiles.ReadAll(full);
                var scan = LegacyScanner.Scan(bytes, cancellationToken);
                var verify = JsonFileVerifier.VerifyBytes(full, bytes, JsonFileCheck.LegacyBus, null, true, cancellationToken);
                cancellationToken.ThrowIfCancellationRequested(); // nothing written yet: a SIGTERM here leaves the file as it was
                int? line = null, col = null;
                if (scan.DamageOffset.HasValue)
                {
                    var (l, c) = TextPosition.FromOffset(bytes, scan.DamageOffset.Value);
                    line = l;
                    col = c;
                }

                if (verify.Healthy && scan.Clean)
                {
                    return new LegacyRepairResult(full, true, false, scan.Events.Count, scan, null, null, null);
                }

                // Keep the damaged original whole before anything else: durable (fsynced) before the file is replaced.
                string qdir = LegacyFiles.QuarantineDir(full);
                options.IO.CreateDirectory(qdir);
                string quarantine = Path.Combine(qdir, Path.GetFileName(full) + "." + LegacyFiles.FileStamp(DateTime.UtcNow) + ".damaged");
                for (int i = 1; File.Exists(quarantine); i++)
                {
                    quarantine = Path.Combine(qdir, Path.GetFileName(full) + "." + LegacyFiles.FileStamp(DateTime.UtcNow) + "-" + i.ToString(CultureInfo.InvariantCulture) + ".damaged");
                }

                AtomicFile.Write(options.IO, quarantine, bytes);
                ReplaceKeepingMode(options.IO, full, Rebuild(scan.Events));
                return new LegacyRepairResult(full, false, true, scan.Events.Count, scan, quarantine, line, col);
            }
        }

        /// <summary>
        /// AtomicFile's recipe (temp in the same directory, fsync, rename, fsync the directory), but the new file keeps
        /// the old one's permissions: the agents may run as other users, and a 0600 bus file would lock them out.
        /// </summary>
        internal static void ReplaceKeepingMode(IStorageIO io, string path, byte[] contents)
        {
            string directory = Path.GetDirectoryName(path)!;
            string temp = Path.Combine(directory, "." + Path.GetFileName(path) + "." + Guid.NewGuid().ToString("N").Substring(0, 8) + ".tmp");
            try
            {
                using (var stream = io.OpenForWrite(temp, createNew: true))
                {
                    stream.Write(contents, 0, contents.Length);
                    // fsync before the rename: otherwise a crash could leave the name on a file whose data never reached the disk.
                    io.Sync(stream);
                }
#if NET8_0_OR_GREATER
                if (!OperatingSystem.IsWindows() && File.Exists(path))
                {
                    File.SetUnixFileMode(temp, File.GetUnixFileMode(path));
                }
#endif
                io.Move(temp, path);
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

            // fsync the directory: the rename is durable only once the directory entry is.
            io.SyncDirectory(directory);
        }

        /// <summary>A legacy file holding exactly these events, each with its original bytes.</summary>
        internal static byte[] Rebuild(IReadOnlyList<LegacyEvent> events)
        {
            var buffer = new MemoryStream();
            if (events.Count == 0)
            {
                Write(buffer, "{\n  \"events\": []\n}");
                return buffer.ToArray();
            }

            Write(buffer, "{\n  \"events\": [\n    ");
            for (int i = 0; i < events.Count; i++)
            {
                if (i > 0)
                {
                    Write(buffer, ",\n    ");
                }

                buffer.Write(events[i].Json, 0, events[i].Json.Length);
            }

            Write(buffer, "\n  ]\n}");
            return buffer.ToArray();
        }

        private static void Write(MemoryStream s, string text)
        {
            byte[] b = Encoding.UTF8.GetBytes(text);
            s.Write(b, 0, b.Length);
        }
    }
}
