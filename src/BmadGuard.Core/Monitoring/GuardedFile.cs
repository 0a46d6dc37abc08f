using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>
    /// A legacy JSON file the monitor guards (e.g. the old bus's <c>shared_context.json</c>).
    /// <para>
    /// Check: read it and parse it strictly with System.Text.Json (no comments, no trailing commas). Damage =
    /// missing, unreadable, or not JSON (truncated, half-written, garbage). The legacy agents write under
    /// <c>fcntl.flock</c> on <c>&lt;file&gt;.lock</c>, so a failed parse is confirmed holding that lock before it is
    /// reported: a writer caught mid-write is not damage.
    /// </para>
    /// <para>
    /// Heal: whenever the file parses and has changed, the monitor keeps a known-good copy in
    /// <c>&lt;store&gt;/monitor/known-good/</c> (atomic replace). On damage, under <c>&lt;file&gt;.lock</c>, the damaged
    /// bytes are copied to the store's <c>quarantine/</c> (fsynced) and the known-good copy is put back atomically.
    /// </para>
    /// </summary>
    public sealed class GuardedFile
    {
        private long _goodLength = -1;
        private DateTime _goodMtime;

        public GuardedFile(string path, string store)
        {
            Path = System.IO.Path.GetFullPath(path);
            Store = store;
            string hash;
            using (var sha = SHA256.Create())
            {
                hash = BitConverter.ToString(sha.ComputeHash(Encoding.UTF8.GetBytes(Path))).Replace("-", "").Substring(0, 12).ToLowerInvariant();
            }

            KnownGoodPath = System.IO.Path.Combine(store, "monitor", "known-good", hash + "-" + System.IO.Path.GetFileName(Path));
        }

        public string Path { get; }
        public string Store { get; }
        public string LockPath => Path + ".lock";
        public string KnownGoodPath { get; }

        public TimeSpan ConfirmLockTimeout { get; set; } = TimeSpan.FromSeconds(1);

        /// <summary>How long damage in a file without a lock file must persist before it counts.</summary>
        public TimeSpan SettleTime { get; set; } = TimeSpan.FromMilliseconds(250);

        public IntegrityResult Check(CancellationToken ct)
        {
            var clock = Stopwatch.StartNew();
            var (finding, bytes, length, mtime) = Inspect();
            if (finding != null && !File.Exists(LockPath))
            {
                // A writer that takes no lock may be between truncate and write: damage must still be there a
                // moment later before anything is done about it.
                ct.WaitHandle.WaitOne(SettleTime);
                (finding, bytes, length, mtime) = Inspect();
            }
            else if (finding != null)
            {
                // Maybe a legacy writer is mid-write: look again holding its lock.
                try
                {
                    using (StoreLock.Acquire(LockPath, ConfirmLockTimeout, ct))
                    {
                        (finding, bytes, length, mtime) = Inspect();
                    }
                }
                catch (BmadGuardException ex) when (ex.Code == ErrorCodes.LockTimeout)
                {
                    // Busy for a whole second: report what we saw.
                }
            }

            if (finding == null && bytes != null && (length != _goodLength || mtime != _goodMtime))
            {
                SaveKnownGood(bytes);
                _goodLength = length;
                _goodMtime = mtime;
            }

            var findings = finding == null ? Array.Empty<IntegrityFinding>() : new[] { finding };
            return new IntegrityResult(Path, true, findings, bytes?.Length ?? 0, 0, clock.Elapsed);
        }

        private (IntegrityFinding? Finding, byte[]? Bytes, long Length, DateTime Mtime) Inspect()
        {
            byte[] bytes;
            DateTime mtime;
            try
            {
                if (!File.Exists(Path))
                {
                    return (new IntegrityFinding(FindingKind.Missing, Path, null, $"Guarded file '{Path}' is missing (deleted or renamed)."), null, -1, default);
                }

                mtime = File.GetLastWriteTimeUtc(Path);
                bytes = ReadShared(Path);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                return (new IntegrityFinding(FindingKind.Unreadable, Path, null, $"Guarded file '{Path}' cannot be read: {ex.Message}"), null, -1, default);
            }

            try
            {
                using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false, MaxDepth = 256 });
                return (null, bytes, bytes.Length, mtime);
            }
            catch (JsonException ex)
            {
                bool truncated = bytes.Length == 0 || ex.Message.IndexOf("end of data", StringComparison.OrdinalIgnoreCase) >= 0
                                 || ex.Message.IndexOf("incomplete", StringComparison.OrdinalIgnoreCase) >= 0
                                 || ex.Message.IndexOf("expected end", StringComparison.OrdinalIgnoreCase) >= 0;
                string what = bytes.Length == 0 ? "is empty" : truncated ? "is truncated (the JSON ends early)" : "is not valid JSON";
                return (new IntegrityFinding(FindingKind.InvalidJson, Path, null,
                    $"Guarded file '{Path}' {what}: line {(ex.LineNumber ?? 0) + 1}, byte {(ex.BytePositionInLine ?? 0) + 1} of the line; {bytes.Length} bytes."), bytes, bytes.Length, mtime);
            }
        }

        private static byte[] ReadShared(string path)
        {
            using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
            var ms = new MemoryStream();
            s.CopyTo(ms);
            return ms.ToArray();
        }

        private void SaveKnownGood(byte[] bytes)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(KnownGoodPath)!);
            AtomicFile.Write(OsStorageIO.Instance, KnownGoodPath, bytes);
        }

        public bool HasKnownGood => File.Exists(KnownGoodPath);

        /// <summary>Puts the known-good copy back, under the file's lock, damaged bytes to quarantine first.</summary>
        public HealResult Restore(CancellationToken ct)
        {
            using (StoreLock.Acquire(LockPath, TimeSpan.FromSeconds(10), ct))
            {
                var (finding, _, _, _) = Inspect();
                if (finding == null)
                {
                    return new HealResult(HealOutcome.NotNeeded, $"'{Path}' parsed again when its lock was taken: nothing to do.");
                }

                if (!File.Exists(KnownGoodPath))
                {
                    return new HealResult(HealOutcome.NotPossible, $"There is no known-good copy of '{Path}' yet (the monitor never saw it parse), so it cannot be restored. The file was not touched.");
                }

                var quarantined = new List<string>();
                long qbytes = 0;
                if (File.Exists(Path))
                {
                    byte[] damaged = ReadShared(Path);
                    string qdir = System.IO.Path.Combine(Store, StorePaths.QuarantineDirName);
                    Directory.CreateDirectory(qdir);
                    string qpath = System.IO.Path.Combine(qdir, $"{DateTime.UtcNow:yyyyMMddTHHmmssfffZ}-{System.IO.Path.GetFileName(Path)}.damaged");
                    using (var q = new FileStream(qpath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1))
                    {
                        q.Write(damaged, 0, damaged.Length);
                        q.Flush(true); // the damaged bytes are durable in quarantine before the file is replaced
                    }

                    DirectorySync.Sync(qdir);
                    quarantined.Add(qpath);
                    qbytes = damaged.Length;
                }

                byte[] good = File.ReadAllBytes(KnownGoodPath);
                AtomicFile.Write(OsStorageIO.Instance, Path, good);
                _goodLength = -1; // re-read (and re-snapshot) at the next check
                return new HealResult(HealOutcome.Healed,
                    $"Restored '{Path}' from its last known-good copy ({good.Length} bytes)" + (quarantined.Count > 0 ? $"; the damaged {qbytes} bytes are in '{quarantined[0]}'." : " (the file had been deleted)."),
                    quarantined, qbytes, KnownGoodPath);
            }
        }
    }
}
