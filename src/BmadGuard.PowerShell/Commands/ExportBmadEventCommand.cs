using System;
using System.Collections.Generic;
using System.Management.Automation;
using System.Threading;
using BmadGuard.Completion;
using BmadGuard.Core.Events;
using BmadGuard.Core.Legacy;
using BmadGuard.Core.Storage;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Export-BmadEvent: writes events in the legacy bus shape (for the older Python readers) or as NDJSON, to a file
    /// replaced atomically (temp file, fsync, rename, fsync the directory; over a guarded bus file under the agents'
    /// lock, after a backup generation). The events come from a store (filtered by -Type and -After) or from the
    /// pipeline (the BmadEvent objects Get-BmadEvent writes), in the order given. One call into Core:
    /// LegacyTransfer.ExportToFile.
    /// </summary>
    [Cmdlet(VerbsData.Export, "BmadEvent", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Export-BmadEvent.md", DefaultParameterSetName = StoreSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(BmadExportResult))]
    public sealed class ExportBmadEventCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "ExportBmadEvent";
        private const string StoreSet = "Store";
        private const string InputObjectSet = "InputObject";

        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private readonly List<EventRecord> _piped = new List<EventRecord>();
        private bool _exportedFromStore;

        /// <summary>The file to write (replaced atomically).</summary>
        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; } = string.Empty;

        /// <summary>Legacy ({"events":[{"timestamp","event","data"}]}, the default) or Ndjson (one full event per line).</summary>
        [Parameter]
        [ValidateSet("Legacy", "Ndjson", IgnoreCase = true)]
        public string Format { get; set; } = "Legacy";

        /// <summary>Events to export, as Get-BmadEvent writes them (pipeline input).</summary>
        [Parameter(Mandatory = true, ParameterSetName = InputObjectSet, ValueFromPipeline = true)]
        public BmadEvent[]? InputObject { get; set; }

        /// <summary>Only events of this type; wildcards * ? [] (case-insensitive), e.g. story.*.</summary>
        [Parameter(ParameterSetName = StoreSet)]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(EventTypeCompleter))]
        public string? Type { get; set; }

        /// <summary>Only events with a seq greater than this.</summary>
        [Parameter(ParameterSetName = StoreSet)]
        [ValidateRange(0L, long.MaxValue)]
        public long After { get; set; }

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(ParameterSetName = StoreSet, ValueFromPipelineByPropertyName = true)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        /// <summary>Never replace an existing file: an existing -Path is an error (ExportBmadEventFileExists).</summary>
        [Parameter]
        public SwitchParameter NoClobber { get; set; }

        /// <summary>Replace an existing file without asking.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        protected override void ProcessRecord()
        {
            if (ParameterSetName == InputObjectSet)
            {
                // Collected and written once at the end: one atomic file holds all piped events.
                foreach (var e in InputObject ?? Array.Empty<BmadEvent>())
                {
                    if (e?.Record != null)
                    {
                        _piped.Add(e.Record);
                    }
                }

                return;
            }

            _exportedFromStore = true;
            string? target = BmadCmdletSupport.ResolveFilePath(this, Path, ErrorPrefix);
            if (target == null)
            {
                return;
            }

            string storePath = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            if (!MayWrite(target, $"Export events of {storePath} as {Format}"))
            {
                return;
            }

            var query = new EventQuery { Type = Type, After = MyInvocation.BoundParameters.ContainsKey(nameof(After)) ? After : (long?)null };
            using var store = BmadCmdletSupport.OpenStore(this, storePath, ErrorPrefix);
            Write(target, () => LegacyTransfer.ExportToFile(store, query, target, ParseFormat(), null, _stop.Token));
        }

        protected override void EndProcessing()
        {
            // Piped events are written here. A pipeline that delivered no event at all (Get-BmadEvent matched nothing)
            // still exports: an empty file, as asked; PowerShell may then not have settled on the InputObject set.
            bool piped = ParameterSetName == InputObjectSet || (MyInvocation.ExpectingInput && !_exportedFromStore);
            if (!piped)
            {
                return;
            }

            string? target = BmadCmdletSupport.ResolveFilePath(this, Path, ErrorPrefix);
            if (target == null || !MayWrite(target, $"Export {_piped.Count} piped events as {Format}"))
            {
                return;
            }

            var events = _piped.ToArray();
            Write(target, () => LegacyTransfer.ExportToFile(events, target, ParseFormat(), null, _stop.Token));
        }

        /// <summary>
        /// ShouldProcess, and for an existing file the overwrite rule: -NoClobber refuses it (an error), -Force or
        /// -Confirm:$false replaces it, otherwise the user is asked (and a session that cannot ask gets an error
        /// naming -Force and -NoClobber instead of a silently replaced file).
        /// </summary>
        private bool MayWrite(string target, string action)
        {
            bool exists = System.IO.File.Exists(target);
            if (exists && NoClobber)
            {
                WriteError(FileExists(target, $"The file '{target}' already exists and -NoClobber was given: nothing was written."));
                return false;
            }

            if (!ShouldProcess(target, exists ? action + ", replacing the existing file" : action))
            {
                return false;
            }

            bool confirmedOff = MyInvocation.BoundParameters.TryGetValue("Confirm", out var confirm) && confirm is SwitchParameter c && !c.IsPresent;
            if (!exists || Force || confirmedOff)
            {
                return true;
            }

            long length = new System.IO.FileInfo(target).Length;
            try
            {
                if (ShouldContinue($"'{target}' already exists ({length} bytes): replace it with the exported events?", "Replace an existing file"))
                {
                    return true;
                }

                WriteError(FileExists(target, $"The file '{target}' already exists and was kept: nothing was written."));
                return false;
            }
            catch (Exception ex) when (ex is PSInvalidOperationException || ex is System.Management.Automation.Host.HostException || ex is NotImplementedException)
            {
                // A host that cannot prompt (-NonInteractive, a scheduled task).
                WriteError(FileExists(target, $"The file '{target}' already exists and this session cannot ask before replacing it: give -Force to replace it, or -NoClobber to keep it."));
                return false;
            }
        }

        private static ErrorRecord FileExists(string target, string message)
            => new ErrorRecord(new BmadGuardException("FileExists", "InvalidInput", message, target, null, null), ErrorPrefix + "FileExists", ErrorCategory.ResourceExists, target);

        private void Write(string target, Func<long> export)
        {
            try
            {
                long count = export();
                WriteObject(BmadExportResult.Create(target, ParseFormat().ToString(), count));
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C: the temporary file is removed and the target keeps its old contents.
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                ThrowTerminatingError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, target));
            }
        }

        private ExportFormat ParseFormat()
            => string.Equals(Format, "Ndjson", StringComparison.OrdinalIgnoreCase) ? ExportFormat.Ndjson : ExportFormat.Legacy;

        protected override void StopProcessing() => _stop.Cancel();

        public void Dispose() => _stop.Dispose();
    }
}
