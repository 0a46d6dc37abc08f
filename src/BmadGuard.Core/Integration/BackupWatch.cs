using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Monitoring;
using BackupSeverity = BmadGuard.Core.Backup.FindingSeverity;
using MonitorFinding = BmadGuard.Core.Monitoring.IntegrityFinding;

namespace BmadGuard.Core.Integration
{
    /// <summary>
    /// The monitor's backup sweep (run on its deep schedule): every backup of the store, in the default destination and
    /// every remembered one, is verified deeply against its manifest with <see cref="BackupVerifier"/> (manifest checksum,
    /// each file's size and SHA-256, each record's CRC and seq), exactly as <c>bmadguard verify --store</c> does through
    /// <see cref="BackupIntegrityCheck"/>. Only errors count (a safety backup's damaged lines are the damaged state it
    /// kept, warnings); a backup under its temporary name is being made and is skipped.
    /// <para>
    /// Cost. A deep verify reads every byte of every backup. A backup that verified is fingerprinted (the SHA-256 of its
    /// manifest plus every file's path, size and modification time); while the fingerprint holds it is read again only
    /// once <see cref="Reverify"/> has passed since it was last read (default 24 h; zero: on every deep pass). So a change
    /// made through the file system (a write, a truncation, a deleted or replaced file) is found on the next deep pass,
    /// and silent media decay (a bit that flips without touching the metadata) within a day, while the bytes read per day
    /// stay one pass over the backups. A damaged backup is read on every deep pass, so a fixed one is seen at once.
    /// </para>
    /// </summary>
    public sealed class BackupWatch : IBackupInspector
    {
        private readonly Dictionary<string, (string Fingerprint, DateTimeOffset ReadAt)> _clean =
            new Dictionary<string, (string, DateTimeOffset)>(StringComparer.Ordinal);

        public BackupWatch(TimeSpan? reverify = null)
        {
            Reverify = reverify ?? TimeSpan.FromHours(24);
        }

        /// <summary>How long a verified, unchanged backup is trusted before it is read in full again.</summary>
        public TimeSpan Reverify { get; }

        /// <summary>The clock (tests).</summary>
        public Func<DateTimeOffset> Clock { get; set; } = () => DateTimeOffset.UtcNow;

        public BackupSweep Verify(string store, CancellationToken cancellationToken)
        {
            var clock = Stopwatch.StartNew();
            var damaged = new List<BackupProblem>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            int backups = 0, read = 0;
            long bytes = 0;
            foreach (string dir in BackupCatalog.EnumerateBackupDirectories(store, null))
            {
                cancellationToken.ThrowIfCancellationRequested();
                string name = Path.GetFileName(dir);
                if (name.StartsWith(".", StringComparison.Ordinal))
                {
                    continue; // being made now, or interrupted: never verified, never restored (verify --store warns)
                }

                backups++;
                seen.Add(dir);
                string? fingerprint = Fingerprint(dir);
                var now = Clock();
                if (fingerprint != null && _clean.TryGetValue(dir, out var known) && known.Fingerprint == fingerprint && now - known.ReadAt < Reverify)
                {
                    continue; // unchanged since it verified, and verified recently
                }

                BackupVerification v;
                try
                {
                    v = BackupVerifier.Verify(dir, BackupCheck.Deep, null, cancellationToken);
                }
                catch (Exception ex) when ((ex is IOException || ex is UnauthorizedAccessException) && !Directory.Exists(dir))
                {
                    backups--;
                    seen.Remove(dir);
                    continue; // removed by retention while we read it
                }

                if (!Directory.Exists(dir))
                {
                    backups--;
                    seen.Remove(dir);
                    continue;
                }

                read++;
                bytes += v.BytesChecked;
                var errors = v.Findings.Where(f => f.Severity == BackupSeverity.Error).ToList();
                if (errors.Count == 0)
                {
                    // Fingerprint taken before the read: a change during the read makes it differ next time.
                    if (fingerprint != null)
                    {
                        _clean[dir] = (fingerprint, now);
                    }

                    continue;
                }

                _clean.Remove(dir);
                damaged.Add(new BackupProblem(v.Name, dir,
                    errors.Select(f => new MonitorFinding(FindingKind.ChecksumMismatch, f.File ?? dir, f.Offset, $"Backup '{v.Name}': {f.Message}")).ToList(),
                    errors.Select(f => f.Code).ToList()));
            }

            foreach (string gone in _clean.Keys.Where(k => !seen.Contains(k)).ToList())
            {
                _clean.Remove(gone);
            }

            return new BackupSweep(backups, read, bytes, damaged, clock.Elapsed);
        }

        /// <summary>SHA-256 of the manifest's bytes and of every file's relative path, size and modification time; null when unreadable.</summary>
        internal static string? Fingerprint(string dir)
        {
            try
            {
                using var sha = SHA256.Create();
                var text = new StringBuilder();
                string manifest = Path.Combine(dir, BackupLayout.ManifestFileName);
                text.Append(File.Exists(manifest) ? Convert.ToBase64String(sha.ComputeHash(File.ReadAllBytes(manifest))) : "-").Append('\n');
                foreach (string f in Directory.GetFiles(dir, "*", SearchOption.AllDirectories).OrderBy(x => x, StringComparer.Ordinal))
                {
                    var info = new FileInfo(f);
                    text.Append(f, dir.Length, f.Length - dir.Length).Append('\t').Append(info.Length).Append('\t').Append(info.LastWriteTimeUtc.Ticks).Append('\n');
                }

                return Convert.ToBase64String(sha.ComputeHash(Encoding.UTF8.GetBytes(text.ToString())));
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                return null;
            }
        }
    }
}
