using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Backup
{
    /// <summary>A restore's kept-aside file and how many of its events the log does not hold.</summary>
    public sealed class SetAsideFile
    {
        internal SetAsideFile(string path, long events, long missing, bool unreadable)
        {
            Path = path;
            Events = events;
            Missing = missing;
            Unreadable = unreadable;
        }

        /// <summary>Full path of <c>quarantine/restore-&lt;time&gt;-kept-aside.jsonl</c>.</summary>
        public string Path { get; }

        /// <summary>The file name: what <c>set-aside --put-back/--dismiss</c> take.</summary>
        public string Name => System.IO.Path.GetFileName(Path);

        /// <summary>Events in the file.</summary>
        public long Events { get; }

        /// <summary>Events in the file that are not in the log (neither at their seq nor, put back, anywhere after it).</summary>
        public long Missing { get; }

        /// <summary>Lines that could not be read back as events (counted as missing).</summary>
        public bool Unreadable { get; }
    }

    /// <summary>What a put-back did.</summary>
    public sealed class SetAsidePutBack
    {
        internal SetAsidePutBack(string file, long appended, long alreadyInLog, string doneFile, IReadOnlyList<EventRecord> records)
        {
            File = file;
            Appended = appended;
            AlreadyInLog = alreadyInLog;
            DoneFile = doneFile;
            Records = records;
        }

        public string File { get; }
        public long Appended { get; }
        public long AlreadyInLog { get; }

        /// <summary>Where the kept-aside file is now (renamed, never deleted).</summary>
        public string DoneFile { get; }

        /// <summary>The events as appended (their new seqs).</summary>
        public IReadOnlyList<EventRecord> Records { get; }
    }

    /// <summary>
    /// Events a restore set aside: <c>quarantine/restore-&lt;time&gt;-kept-aside.jsonl</c> holds acknowledged events the
    /// restored log does not. Until an operator puts them back or dismisses them, every such file with events missing
    /// from the log is reported (verify: <c>SetAsideEvents</c> warning with the count; health: the <c>setAside</c> check).
    /// <list type="bullet">
    /// <item>An event counts as in the log when the log holds a record with its id at its seq, or anywhere after the
    /// file's lowest seq (a put-back appends it again with its id).</item>
    /// <item>Put-back appends the missing ones, with their ids and times, in the file's order, then renames the file to
    /// <c>…kept-aside.jsonl.put-back</c>. The file is its own journal: a put-back killed half-way leaves the file under
    /// its name, verify still counts what is missing, and the next put-back appends only that (ids already in the log are
    /// skipped), so no event is lost and none is appended twice. Put-backs of a store are serialized by
    /// <c>setaside.lock</c>.</item>
    /// <item>Dismiss renames the file to <c>…kept-aside.jsonl.dismissed</c>: the events stay on disk, no longer reported
    /// as missing.</item>
    /// </list>
    /// </summary>
    public static class SetAsideEvents
    {
        public const string Suffix = "-kept-aside.jsonl";
        public const string PutBackSuffix = ".put-back";
        public const string DismissedSuffix = ".dismissed";
        private const string LockName = "setaside.lock";

        internal static bool IsKeptAsideName(string name)
            => name.StartsWith("restore-", StringComparison.Ordinal) && name.EndsWith(Suffix, StringComparison.Ordinal);

        /// <summary>The kept-aside files of a store, oldest first, with what the log is missing of each.</summary>
        public static IReadOnlyList<SetAsideFile> List(string storeRoot, CancellationToken cancellationToken = default)
        {
            string dir = System.IO.Path.Combine(storeRoot, StorePaths.QuarantineDirName);
            var result = new List<SetAsideFile>();
            if (!Directory.Exists(dir))
            {
                return result;
            }

            foreach (string file in Directory.EnumerateFiles(dir).Where(f => IsKeptAsideName(System.IO.Path.GetFileName(f))).OrderBy(f => f, StringComparer.Ordinal))
            {
                var keys = ReadKeys(file, out bool unreadable);
                long missing = keys.Count == 0 ? 0 : Missing(storeRoot, keys, cancellationToken).Count;
                result.Add(new SetAsideFile(file, keys.Count, missing + (unreadable ? 1 : 0), unreadable));
            }

            return result;
        }

        /// <summary>Appends the file's events that the log does not hold (their ids and times kept), then renames the file.</summary>
        public static SetAsidePutBack PutBack(string storeRoot, string name, TimeSpan lockTimeout, CancellationToken cancellationToken = default)
        {
            string file = Resolve(storeRoot, name);
            using (StoreLock.Acquire(System.IO.Path.Combine(storeRoot, LockName), lockTimeout, cancellationToken))
            {
                var events = new List<EventRecord>();
                int lineNumber = 0;
                foreach (string line in File.ReadLines(file))
                {
                    lineNumber++;
                    if (line.Length == 0)
                    {
                        continue;
                    }

                    var record = ParseEvent(Encoding.UTF8.GetBytes(line));
                    if (record == null)
                    {
                        throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                            $"Line {lineNumber} of '{file}' cannot be read back as an event; nothing was put back.", file);
                    }

                    events.Add(record);
                }

                var missing = Missing(storeRoot, events.Select(e => (e.Seq, e.Id)).ToList(), cancellationToken);
                var appended = new List<EventRecord>();
                using (var store = FileEventStore.Open(storeRoot, new StoreOpenOptions { LockTimeout = lockTimeout }))
                {
                    var todo = events.Where(e => missing.Contains(e.Id)).ToList();
                    const int Batch = 1000;
                    for (int i = 0; i < todo.Count; i += Batch)
                    {
                        // Each batch is acknowledged whole or not at all (the store's append); a kill between batches
                        // leaves the rest for the next put-back, which skips what is already in the log by id.
                        var batch = todo.Skip(i).Take(Batch)
                            .Select(e => (EventDraft.FromJson(e.Type, e.Source, e.CorrelationId, e.DataJson), e.Id, e.Timestamp))
                            .ToList();
                        appended.AddRange(store.PublishImported(batch, null, CancellationToken.None, allowReserved: true));
                    }
                }

                string done = Rename(file, PutBackSuffix);
                return new SetAsidePutBack(file, appended.Count, events.Count - appended.Count, done, appended);
            }
        }

        /// <summary>Renames the kept-aside file to <c>….dismissed</c> (its bytes stay). Returns the new path.</summary>
        public static string Dismiss(string storeRoot, string name, TimeSpan lockTimeout, CancellationToken cancellationToken = default)
        {
            string file = Resolve(storeRoot, name);
            using (StoreLock.Acquire(System.IO.Path.Combine(storeRoot, LockName), lockTimeout, cancellationToken))
            {
                return Rename(file, DismissedSuffix);
            }
        }

        private static string Resolve(string storeRoot, string name)
        {
            string? file = null;
            if (!string.IsNullOrEmpty(name) && name.IndexOfAny(new[] { '/', '\\' }) < 0 && IsKeptAsideName(name))
            {
                file = System.IO.Path.Combine(storeRoot, StorePaths.QuarantineDirName, name);
            }

            if (file == null || !File.Exists(file))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                    $"'{name}' is not a kept-aside file of this store (a name like restore-<time>{Suffix} in its quarantine folder).");
            }

            return file;
        }

        private static string Rename(string file, string suffix)
        {
            string target = file + suffix;
            for (int i = 1; File.Exists(target); i++)
            {
                target = file + suffix + "-" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            OsStorageIO.Instance.Move(file, target);
            OsStorageIO.Instance.SyncDirectory(System.IO.Path.GetDirectoryName(file)!); // the file is no longer reported after a crash either
            return target;
        }

        private static List<(long Seq, string Id)> ReadKeys(string file, out bool unreadable)
        {
            unreadable = false;
            var keys = new List<(long, string)>();
            foreach (string line in File.ReadLines(file))
            {
                if (line.Length == 0)
                {
                    continue;
                }

                var record = ParseEvent(Encoding.UTF8.GetBytes(line));
                if (record == null)
                {
                    unreadable = true;
                    continue;
                }

                keys.Add((record.Seq, record.Id));
            }

            return keys;
        }

        /// <summary>Ids of <paramref name="keys"/> that the log holds neither at their seq nor anywhere after the lowest of them.</summary>
        private static HashSet<string> Missing(string storeRoot, IReadOnlyCollection<(long Seq, string Id)> keys, CancellationToken cancellationToken)
        {
            var missing = new HashSet<string>(keys.Select(k => k.Id), StringComparer.Ordinal);
            if (missing.Count == 0)
            {
                return missing;
            }

            long from = keys.Min(k => k.Seq);
            string segmentsDir = System.IO.Path.Combine(storeRoot, StorePaths.SegmentsDirName);
            var segments = Directory.Exists(segmentsDir) ? SegmentNames.List(segmentsDir) : new List<(long FirstSeq, string Path)>();
            for (int i = 0; i < segments.Count && missing.Count > 0; i++)
            {
                if (i + 1 < segments.Count && segments[i + 1].FirstSeq <= from)
                {
                    continue; // wholly before the first kept-aside seq
                }

                try
                {
                    foreach (var (seq, id, _) in StoreRestore.ReadKeys(segments[i].Path, cancellationToken, null))
                    {
                        if (seq >= from)
                        {
                            missing.Remove(id);
                        }
                    }
                }
                catch (IOException)
                {
                    // A segment swapped away while we read: what it held is counted as missing (reported, never hidden).
                }
            }

            return missing;
        }

        /// <summary>An event line (event JSON, as in the kept-aside file) parsed back into a record.</summary>
        internal static EventRecord? ParseEvent(byte[] eventJson)
        {
            // RecordCodec.DecodeEvent takes a checked record line (body + crc trailer); the kept-aside file holds the
            // event JSON (body + '}'), which is what EventBytes returns for a line. Rebuild a line to reuse it.
            if (eventJson.Length < 2 || eventJson[eventJson.Length - 1] != (byte)'}')
            {
                return null;
            }

            var buffer = new MemoryStream(eventJson.Length + 32);
            buffer.Write(eventJson, 0, eventJson.Length - 1);
            RecordCodec.AppendTrailer(buffer, 0);
            var line = buffer.ToArray();
            int length = line.Length;
            if (length > 0 && line[length - 1] == (byte)'\n')
            {
                length--;
            }

            return RecordCodec.DecodeEvent(new ReadOnlySpan<byte>(line, 0, length));
        }
    }
}
