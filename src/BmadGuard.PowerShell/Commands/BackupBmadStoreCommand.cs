using System;
using System.Management.Automation;
using System.Threading;
using BmadGuard.Core.Backup;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Backup-BmadStore: a verified point-in-time backup taken while publishers keep publishing (StoreBackup.Create),
    /// then the retention policy given by -Keep* (never the newest verified backup, the one just made, or the newest
    /// safety backup; safety backups only by -KeepSafety).
    /// </summary>
    [Cmdlet(VerbsData.Backup, "BmadStore", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Backup-BmadStore.md", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(BmadBackup))]
    public sealed class BackupBmadStoreCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "BackupBmadStore";

        private readonly CancellationTokenSource _stop = new CancellationTokenSource();

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Path")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        /// <summary>Where backups go (default &lt;store&gt;/backups); another volume is best.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Destination { get; set; }

        /// <summary>After the backup, keep the last N verified backups.</summary>
        [Parameter]
        [ValidateRange(1, 100000)]
        public int KeepLast { get; set; }

        /// <summary>After the backup, keep the newest backup of each of the last N hours that have one.</summary>
        [Parameter]
        [ValidateRange(1, 100000)]
        public int KeepHourly { get; set; }

        /// <summary>After the backup, keep the newest backup of each of the last N days that have one.</summary>
        [Parameter]
        [ValidateRange(1, 100000)]
        public int KeepDaily { get; set; }

        /// <summary>After the backup, keep the newest backup of each of the last N weeks that have one.</summary>
        [Parameter]
        [ValidateRange(1, 100000)]
        public int KeepWeekly { get; set; }

        /// <summary>After the backup, keep only the newest N safety backups (made by Restore-BmadStore); without it none is removed, and the newest is always kept.</summary>
        [Parameter]
        [ValidateRange(1, 100000)]
        public int KeepSafety { get; set; }

        protected override void ProcessRecord()
        {
            string path = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            string? destination = Destination == null ? null : BmadCmdletSupport.ResolveStorePath(this, Destination, ErrorPrefix + "Destination");
            var options = new BackupOptions { Destination = destination, Retention = Retention() };
            string where = destination ?? System.IO.Path.Combine(path, "backups");
            if (!ShouldProcess(path, $"Back up the store to '{where}'" + (options.Retention != null ? " and apply the retention policy" : "")))
            {
                return;
            }

            var progress = new BackupProgressWriter(this, 1, $"Backing up {path}");
            try
            {
                WriteObject(new BmadBackup(StoreBackup.Create(path, options, progress, _stop.Token)));
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C: the temporary backup directory is left unfinished and never reported as a backup.
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                // One store that cannot be backed up does not stop the next one in the pipeline.
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, path));
            }
            finally
            {
                progress.Complete();
            }
        }

        private RetentionPolicy? Retention()
        {
            var bound = MyInvocation.BoundParameters;
            var policy = new RetentionPolicy
            {
                KeepLast = bound.ContainsKey(nameof(KeepLast)) ? KeepLast : (int?)null,
                KeepHourly = bound.ContainsKey(nameof(KeepHourly)) ? KeepHourly : (int?)null,
                KeepDaily = bound.ContainsKey(nameof(KeepDaily)) ? KeepDaily : (int?)null,
                KeepWeekly = bound.ContainsKey(nameof(KeepWeekly)) ? KeepWeekly : (int?)null,
                KeepSafety = bound.ContainsKey(nameof(KeepSafety)) ? KeepSafety : (int?)null,
            };
            return policy.IsEmpty ? null : policy;
        }

        protected override void StopProcessing() => _stop.Cancel();

        public void Dispose() => _stop.Dispose();
    }
}
