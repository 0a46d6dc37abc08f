using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Storage;
using BackupSeverity = BmadGuard.Core.Backup.FindingSeverity;

namespace BmadGuard.Core.Integration
{
    /// <summary>
    /// The store verify's backup check (registered by default in <see cref="IntegrityChecks"/>): every backup
    /// of the store, in its default destination and every destination it remembers, is checked deeply against
    /// its manifest (<see cref="BackupVerifier"/>: manifest checksum, every file's size and SHA-256, every record's
    /// CRC and seq). Each backup finding becomes a store finding with the same code, the backup file's full
    /// path and byte offset, so <c>bmadguard verify --store</c> and Test-BmadIntegrity name a tampered backup file.
    /// <para>
    /// A backup directory still under its temporary name (<c>.&lt;name&gt;.tmp</c>) is a backup being made right
    /// now (a monitor's scheduled backup) or one that was interrupted: it holds nothing restore would use, so it
    /// is a warning, not damage. A backup removed by retention while it was being checked is skipped.
    /// </para>
    /// </summary>
    public sealed class BackupIntegrityCheck : IIntegrityCheck
    {
        public string Name => "backups";

        public void Check(string storeRoot, IntegrityReportBuilder report, IProgress<IntegrityProgress>? progress, CancellationToken cancellationToken)
        {
            var clean = new List<(string Name, BackupManifest Manifest)>();
            foreach (string dir in BackupCatalog.EnumerateBackupDirectories(storeRoot, null))
            {
                cancellationToken.ThrowIfCancellationRequested();
                string name = Path.GetFileName(dir);
                if (name.StartsWith(".", StringComparison.Ordinal))
                {
                    report.Warning(BackupFindingCodes.Incomplete, dir,
                        $"'{name}' is a backup that is being made now or was interrupted; it was never verified and restore never uses it. Once nothing in it has changed for 10 minutes, Repair-BmadStore moves it to quarantine.");
                    continue;
                }

                progress?.Report(new IntegrityProgress("Verifying backup " + name, dir, 0, 0));
                BackupVerification v;
                try
                {
                    v = BackupVerifier.Verify(dir, BackupCheck.Deep, null, cancellationToken);
                }
                catch (Exception ex) when ((ex is IOException || ex is UnauthorizedAccessException) && !Directory.Exists(dir))
                {
                    continue; // removed by retention while we read it
                }

                if (!Directory.Exists(dir))
                {
                    continue; // removed by retention while we read it: its findings are about files that are gone
                }

                report.Files += v.Manifest?.Files.Count + 1 ?? 1;
                if (v.Manifest != null && v.Manifest.Kind == BackupKinds.Backup && v.Manifest.WriterEpoch.HasValue && !v.Findings.Any(f => f.Severity == BackupSeverity.Error))
                {
                    clean.Add((v.Name, v.Manifest));
                }

                report.Bytes += v.BytesChecked;
                foreach (var f in v.Findings)
                {
                    string message = $"Backup '{v.Name}': {f.Message}";
                    switch (f.Severity)
                    {
                        case BackupSeverity.Error:
                            report.Error(f.Code, f.File, message, f.Offset);
                            break;
                        case BackupSeverity.Warning:
                            report.Warning(f.Code, f.File, message, f.Offset);
                            break;
                        default:
                            report.Info(f.Code, f.File, message, f.Offset);
                            break;
                    }
                }
            }

            CompareWithStore(storeRoot, clean, report, cancellationToken);
        }

        /// <summary>How long the comparison waits for the writers' lock (it reads the epoch and the log's end together).</summary>
        public static TimeSpan CrossCheckLockWait { get; set; } = TimeSpan.FromSeconds(2);

        /// <summary>
        /// The store against its verified backups, without a monitor: a backup made under the writer epoch the store has
        /// now, whose manifest says the store had reached seq N, while the store ends below N, means acknowledged events
        /// vanished (the newest segment deleted, the log cut at a record boundary) — the store alone still verifies.
        /// A restore or repair bumps the epoch, so rolling back on purpose is not reported. Backups made before manifests
        /// recorded the epoch are not compared.
        /// </summary>
        private static void CompareWithStore(string storeRoot, List<(string Name, BackupManifest Manifest)> clean, IntegrityReportBuilder report, CancellationToken cancellationToken)
        {
            if (clean.Count == 0 || !File.Exists(Path.Combine(storeRoot, StorePaths.LockFileName)))
            {
                return;
            }

            long epoch, last;
            try
            {
                using var held = StoreLock.Acquire(Path.Combine(storeRoot, StorePaths.LockFileName), CrossCheckLockWait, cancellationToken);
                epoch = held.ReadEpoch();
                last = Monitoring.SeqWatermark.ReadEnd(storeRoot).Seq;
            }
            catch (Exception ex) when (ex is BmadGuardException || ex is IOException || ex is UnauthorizedAccessException)
            {
                report.Info(FindingCodes.BackupCrossCheckSkipped, storeRoot,
                    $"The store was not compared with its backups' last seqs: {ex.Message}");
                return;
            }

            var ahead = clean.Where(b => b.Manifest.WriterEpoch == epoch && b.Manifest.LastSeq > last)
                .OrderByDescending(b => b.Manifest.LastSeq).FirstOrDefault();
            if (ahead.Manifest == null)
            {
                return;
            }

            var m = ahead.Manifest;
            var holder = m.Files.Where(f => f.IsSegment && f.FirstSeq <= last + 1 && f.LastSeq >= last + 1).Select(f => f.Path).FirstOrDefault();
            string expected = holder != null ? Path.Combine(storeRoot, holder.Replace('/', Path.DirectorySeparatorChar)) : Path.Combine(storeRoot, StorePaths.SegmentsDirName);
            report.Error(FindingCodes.StoreBehindBackup, expected,
                $"The store ends at seq {last}, but backup '{ahead.Name}', made under the same writer epoch {epoch}, holds the store up to seq {m.LastSeq}: " +
                $"acknowledged events {last + 1}..{m.LastSeq} vanished from the store (seq {last + 1} was in '{expected}'{(File.Exists(expected) ? ", which is now shorter" : ", which is gone")}). " +
                $"Nothing was restored by the check: 'bmadguard restore --store … --backup {ahead.Name}' or a monitor with --on-damage repair|restore brings them back.");
        }
    }
}
