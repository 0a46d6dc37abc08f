using System;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Threading;
using BmadGuard.Completion;
using BmadGuard.Core;
using BmadGuard.Core.Backup;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Restore-BmadStore: brings a store back to a verified backup (StoreRestore.Restore): the latest, a named one
    /// (also from Get-BmadBackup through the pipeline), the state at a time, or up to a seq. A safety backup is made
    /// first and current events not in the restored state are kept aside in a file the result names.
    /// </summary>
    [Cmdlet(VerbsData.Restore, "BmadStore", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Restore-BmadStore.md", DefaultParameterSetName = LatestSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(BmadRestoreResult))]
    public sealed class RestoreBmadStoreCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "RestoreBmadStore";
        private const string LatestSet = "Latest";
        private const string NameSet = "Name";
        private const string AtSet = "At";
        private const string SequenceSet = "Sequence";

        private readonly CancellationTokenSource _stop = new CancellationTokenSource();

        /// <summary>Restore the newest verified backup (the default when no other selector is given).</summary>
        [Parameter(ParameterSetName = LatestSet)]
        public SwitchParameter Latest { get; set; }

        /// <summary>Restore the backup with this name (from Get-BmadBackup).</summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = NameSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(BackupNameCompleter))]
        [Alias("Backup", "BackupName")]
        [ValidateNotNullOrEmpty]
        public string? Name { get; set; }

        /// <summary>Restore the state at this time: the first backup taken at or after it, keeping only events up to it.</summary>
        [Parameter(Mandatory = true, ParameterSetName = AtSet)]
        public DateTime At { get; set; }

        /// <summary>Restore up to and including this seq.</summary>
        [Parameter(Mandatory = true, ParameterSetName = SequenceSet)]
        [ValidateRange(0L, long.MaxValue)]
        public long Sequence { get; set; }

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        /// <summary>
        /// Do not ask for confirmation (for scheduled and unattended runs), and restore even when that leaves fewer events
        /// than the log holds now (they are set aside; without -Force that is refused with RestoreBmadStoreSetAsideNeedsForce).
        /// </summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        protected override void ProcessRecord()
        {
            string path = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            var request = new RestoreRequest { Force = Force.IsPresent };
            string what;
            switch (ParameterSetName)
            {
                case NameSet:
                    request.BackupName = Name;
                    what = $"backup {Name}";
                    break;
                case AtSet:
                    var at = At.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(At, DateTimeKind.Local) : At;
                    request.At = new DateTimeOffset(at);
                    what = $"the state at {request.At.Value.ToUniversalTime():u}";
                    break;
                case SequenceSet:
                    request.Sequence = Sequence;
                    what = $"the state up to seq {Sequence}";
                    break;
                default:
                    request.Latest = true;
                    what = "the latest verified backup";
                    break;
            }

            try
            {
                // Bad input (name, seq, a missing store) is reported as such before anyone is asked anything.
                path = StoreRestore.Validate(path, request);
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, path));
                return;
            }

            if (!Confirmed(path, what))
            {
                return;
            }

            var progress = new BackupProgressWriter(this, 3, $"Restoring {path}");
            try
            {
                var report = StoreRestore.Restore(path, request, progress, _stop.Token);
                foreach (string notice in report.Notices)
                {
                    WriteWarning(notice);
                }

                var result = new BmadRestoreResult(report);
                // -Verbose says what was done, not only what was asked.
                WriteVerbose($"Backup chosen: {result.Backup} ({result.BackupPath}), up to seq {result.RestoredLastSeq}.");
                WriteVerbose($"Safety backup of the state before: {result.SafetyBackup} ({result.SafetyBackupPath}).");
                WriteVerbose($"Restored under the writers' lock in {result.Duration.TotalMilliseconds:0} ms: {result.EventsBefore} event(s) before, {result.EventsAfter} after"
                    + (result.KeptAside > 0 ? $"; {result.KeptAside} newer event(s) kept aside in {result.KeptAsideFile}." : "."));
                if (result.ConsumersRewound.Length > 0)
                {
                    WriteVerbose($"Consumers rewound: {string.Join(", ", result.ConsumersRewound)}.");
                }

                WriteObject(result);
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C: StoreRestore only swaps in the restored state as its last step; before that nothing changed.
            }
            catch (Core.BmadGuardException ex) when (ex.Code == ErrorCodes.SetAsideNeedsForce)
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(
                    new Core.BmadGuardException(ex.Code, ex.Kind, ex.Message + " To restore anyway and set them aside, add -Force.", ex.Path, ex.Offset, ex), ErrorPrefix, path));
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, path));
            }
            finally
            {
                progress.Complete();
            }
        }

        /// <summary>
        /// -WhatIf shows the action and changes nothing (even with -Force); -Force and -Confirm:$false never prompt;
        /// otherwise ShouldProcess asks (ConfirmImpact High). A host that cannot ask (-NonInteractive, a scheduled
        /// task) gets RestoreBmadStoreConfirmationRequired instead of a hang or an unrelated host error.
        /// </summary>
        private bool Confirmed(string path, string what)
        {
            string action = $"Restore {what} (a safety backup of the current state is made first; newer events are kept aside)";
            bool whatIf = MyInvocation.BoundParameters.TryGetValue("WhatIf", out object? w) && w is SwitchParameter s && s.IsPresent
                          || SessionState.PSVariable.GetValue("WhatIfPreference") is object pref && LanguagePrimitives.IsTrue(pref);
            if (Force && !whatIf)
            {
                return true;
            }

            try
            {
                return ShouldProcess(path, action);
            }
            catch (Exception ex) when (ex is HostException || ex is PSInvalidOperationException || ex is NotImplementedException)
            {
                ThrowTerminatingError(new ErrorRecord(
                    BmadGuardException.Wrap(new Core.BmadGuardException(ErrorCodes.ConfirmationRequired, FailureKind.InvalidInput,
                        $"Restoring '{path}' needs confirmation and this host cannot ask ({ex.Message}): pass -Force or -Confirm:$false. Nothing was changed.", null, null, ex)),
                    BmadCmdletSupport.ErrorId(ErrorPrefix, ErrorCodes.ConfirmationRequired), ErrorCategory.InvalidOperation, path));
                return false;
            }
        }

        protected override void StopProcessing() => _stop.Cancel();

        public void Dispose() => _stop.Dispose();
    }
}
