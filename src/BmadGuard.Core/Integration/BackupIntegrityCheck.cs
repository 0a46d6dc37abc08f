using System;
using System.IO;
using System.Threading;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Integrity;
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
            foreach (string dir in BackupCatalog.EnumerateBackupDirectories(storeRoot, null))
            {
                cancellationToken.ThrowIfCancellationRequested();
                string name = Path.GetFileName(dir);
                if (name.StartsWith(".", StringComparison.Ordinal))
                {
                    report.Warning(BackupFindingCodes.Incomplete, dir,
                        $"'{name}' is a backup that is being made now or was interrupted; it was never verified and restore never uses it. If no backup is running, it is safe to delete.");
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
        }
    }
}
