using System;
using System.Linq;
using System.Threading;
using BmadGuard.Core.Monitoring;
using CatalogEntry = BmadGuard.Core.Backup.BackupInfo;
using MonitorBackup = BmadGuard.Core.Monitoring.BackupInfo;

namespace BmadGuard.Core.Backup
{
    /// <summary>
    /// Plugs the backup feature into the monitor's and the health report's seams: scheduled backups and the
    /// "newest verified backup" through <see cref="StoreBackup"/> / <see cref="BackupCatalog"/>, and restore
    /// through <see cref="StoreRestore"/> (which takes the writers' lock, makes a safety backup and keeps newer
    /// events aside). Repair stays <see cref="TornTailHealer"/>'s (the only lossless store repair).
    /// </summary>
    public sealed class StoreBackupHooks : IBackupTaker, IStoreHealer
    {
        public static StoreBackupHooks Instance { get; } = new StoreBackupHooks();

        /// <summary>Monitor hooks with backups and restore wired in (the defaults for everything else).</summary>
        public static MonitorHooks CreateMonitorHooks() => new MonitorHooks { Backups = Instance, Healer = Instance };

        public BackupResult TakeBackup(string store, string reason, CancellationToken cancellationToken)
        {
            if (reason == "safety")
            {
                // StoreRestore.Restore makes the safety backup itself, under the writers' lock and able to copy a
                // damaged store's bytes as they are; a separate one here would fail on exactly the damage being healed.
                return new BackupResult(false, false, "The restore makes its own safety backup of the current state (kind 'safety').");
            }

            try
            {
                var info = StoreBackup.Create(store, null, null, cancellationToken);
                return new BackupResult(true, info.State == BackupState.Verified,
                    $"Backup {info.Name} ({reason}): {info.EventCount} events up to seq {info.LastSeq}, {info.State}.",
                    new MonitorBackup(info.Name, info.Created, info.State == BackupState.Verified, info.Path));
            }
            catch (BmadGuardException ex)
            {
                return new BackupResult(true, false, $"Backup ({reason}) failed: {ex.Code}: {ex.Message}");
            }
        }

        public MonitorBackup? NewestVerified(string store)
        {
            CatalogEntry? newest = BackupCatalog.List(store)
                .Where(b => b.State == BackupState.Verified && b.Kind == BackupKinds.Backup)
                .OrderBy(b => b.Created)
                .LastOrDefault();
            return newest == null ? null : new MonitorBackup(newest.Name, newest.Created, true, newest.Path);
        }

        public HealResult Repair(string store, IntegrityResult damage, CancellationToken cancellationToken)
            => TornTailHealer.Instance.Repair(store, damage, cancellationToken);

        public HealResult RestoreLatest(string store, CancellationToken cancellationToken)
        {
            try
            {
                var report = StoreRestore.Restore(store, new RestoreRequest { Latest = true }, null, cancellationToken);
                return new HealResult(HealOutcome.Healed,
                    $"Restored backup {report.Backup} (seq {report.RestoredLastSeq}); safety backup {report.SafetyBackup}; {report.KeptAside} event(s) kept aside"
                    + (report.KeptAsideFile != null ? $" in {report.KeptAsideFile}" : "") + ".",
                    report.ReplacedSegments != null ? new[] { report.ReplacedSegments } : Array.Empty<string>(),
                    0, report.BackupPath);
            }
            catch (BmadGuardException ex) when (ex.Code == ErrorCodes.BackupNotFound)
            {
                return new HealResult(HealOutcome.NotAvailable, ex.Message);
            }
            catch (BmadGuardException ex)
            {
                return new HealResult(HealOutcome.Failed, $"{ex.Code}: {ex.Message}");
            }
        }
    }
}
