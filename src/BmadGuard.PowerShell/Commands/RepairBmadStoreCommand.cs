using System;
using System.IO;
using System.Management.Automation;
using System.Threading;
using BmadGuard.Core;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Legacy;
using BmadGuard.Core.Storage;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Repair-BmadStore: under the writers' lock, cuts a torn tail, quarantines stray files and damaged segments and
    /// rebuilds them from every valid record (store), or salvages every complete event of a damaged legacy bus file
    /// and replaces it atomically, keeping the damaged original in quarantine (-Path). Nothing is deleted to
    /// recover: the report lists every byte moved and where it was kept. One call into Core:
    /// StoreRepair.Repair or LegacyBusFile.Repair.
    /// </summary>
    [Cmdlet(VerbsDiagnostic.Repair, "BmadStore", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Repair-BmadStore.md", DefaultParameterSetName = StoreSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(BmadRepairReport))]
    public sealed class RepairBmadStoreCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "RepairBmadStore";
        private const string StoreSet = "Store";
        private const string PathSet = "Path";

        private readonly CancellationTokenSource _stop = new CancellationTokenSource();

        /// <summary>The store directory (a file given here is salvaged as a legacy bus file). Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(Position = 0, ParameterSetName = StoreSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Target")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        /// <summary>A legacy bus file (shared_context.json) to salvage.</summary>
        [Parameter(Mandatory = true, ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
        [Alias("FullName")]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; } = string.Empty;

        /// <summary>Seconds to wait for the writers' lock (store) or the agents' lock (file) before failing.</summary>
        [Parameter]
        [DurationTransformation(Seconds = true)]
        [ValidateRange(0.0, 86400.0)]
        public double LockTimeout { get; set; } = 30;

        /// <summary>Repair without asking for confirmation (for scheduled tasks); -WhatIf still only describes.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        protected override void ProcessRecord()
        {
            bool file = ParameterSetName == PathSet;
            string? target = file ? BmadCmdletSupport.ResolveFilePath(this, Path, ErrorPrefix) : BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            if (target == null)
            {
                return;
            }

            // What is repaired follows what is on disk, as in Test-BmadIntegrity: a file piped by value or as a
            // report's Target is a legacy bus file.
            file |= File.Exists(target);

            string action = file ? "Salvage the legacy bus file (damaged original kept in quarantine)" : "Repair the store (damaged bytes moved to quarantine)";
            // High impact: a repair rewrites files (every moved byte is kept in quarantine), so it asks first unless
            // -Force or -Confirm:$false says not to; a session that cannot ask gets an error naming them.
            bool approved;
            try
            {
                approved = BmadCmdletSupport.Approve(this, Force.IsPresent, target, action);
            }
            catch (Exception ex) when (ex is System.Management.Automation.Host.HostException || ex is PSInvalidOperationException || ex is NotImplementedException)
            {
                WriteError(new ErrorRecord(
                    BmadGuardException.Wrap(new Core.BmadGuardException(ErrorCodes.ConfirmationRequired, FailureKind.InvalidInput,
                        $"Repairing '{target}' needs confirmation and this session cannot ask: pass -Force or -Confirm:$false. Nothing was changed.", target, null, ex)),
                    BmadCmdletSupport.ErrorId(ErrorPrefix, ErrorCodes.ConfirmationRequired), ErrorCategory.InvalidOperation, target));
                return;
            }

            if (!approved)
            {
                return;
            }

            var progress = new CmdletProgress(this, "Repair-BmadStore " + target);
            try
            {
                var timeout = TimeSpan.FromSeconds(LockTimeout);
                var report = file
                    ? BmadRepairReport.FromLegacyResult(LegacyBusFile.Repair(target, new LegacyWriteOptions { LockTimeout = timeout }, _stop.Token))
                    : BmadRepairReport.FromStoreReport(StoreRepair.Repair(target, new StoreRepairOptions { LockTimeout = timeout, Progress = progress }, _stop.Token));
                if (report.NeedsRestore)
                {
                    WriteWarning($"{target}: {report.LostEvents} events could not be recovered from the store itself; restore them from a backup (Restore-BmadStore).");
                }

                // -Verbose says what was done: every move to quarantine, with its bytes.
                foreach (var a in report.Actions)
                {
                    WriteVerbose($"{a.Kind}: {a.File}{(a.Offset.HasValue ? " @" + a.Offset : "")}{(a.Length.HasValue ? $" ({a.Length} bytes)" : "")}{(a.QuarantinePath != null ? " -> " + a.QuarantinePath : "")}: {a.Message}");
                }

                WriteObject(report);
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C: Core stops between steps; every step already taken is complete and durable.
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, target));
            }
            finally
            {
                progress.Complete();
            }
        }

        protected override void StopProcessing() => _stop.Cancel();

        public void Dispose() => _stop.Dispose();
    }
}
