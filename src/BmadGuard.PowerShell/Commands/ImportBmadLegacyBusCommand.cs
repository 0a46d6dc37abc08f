using System;
using System.Management.Automation;
using System.Threading;
using BmadGuard.Core.Legacy;
using BmadGuard.Core.Storage;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Import-BmadLegacyBus: copies a legacy bus file (salvaged in memory when damaged; the file is not changed) into a
    /// store, keeping each event's time, type and data. Idempotent: events an earlier import wrote are skipped.
    /// One call into Core: LegacyTransfer.Import.
    /// </summary>
    [Cmdlet(VerbsData.Import, "BmadLegacyBus", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Import-BmadLegacyBus.md", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(BmadLegacyImportResult))]
    public sealed class ImportBmadLegacyBusCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "ImportBmadLegacyBus";

        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private string _storePath = string.Empty;
        private FileEventStore? _store;

        /// <summary>The legacy bus file (shared_context.json).</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("FullName")]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; } = string.Empty;

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Store { get; set; }

        /// <summary>The source recorded on imported events (legacy events have none). Default 'legacy'.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string Source { get; set; } = "legacy";

        /// <summary>Seconds to wait for the agents' lock on the file and the store's import lock.</summary>
        [Parameter]
        [ValidateRange(0.0, 86400.0)]
        public double LockTimeout { get; set; } = 10;

        /// <summary>
        /// Also gather what the old bus lost: &lt;file&gt;.backup, BmadGuard's generations, leftover temp copies, quarantined
        /// copies (beside the file and in the store) and the monitor's known-good copy. One result per source read.
        /// </summary>
        [Parameter]
        public SwitchParameter Recover { get; set; }

        protected override void BeginProcessing()
        {
            _storePath = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
        }

        protected override void ProcessRecord()
        {
            string? file = BmadCmdletSupport.ResolveFilePath(this, Path, ErrorPrefix);
            if (file == null || !ShouldProcess(_storePath, $"Import the legacy bus file '{file}'"))
            {
                return;
            }

            _store ??= (FileEventStore)BmadCmdletSupport.OpenStore(this, _storePath, ErrorPrefix);
            var progress = new CmdletProgress(this, "Import-BmadLegacyBus " + file);
            try
            {
                var options = new LegacyImportOptions { Source = Source, LockTimeout = TimeSpan.FromSeconds(LockTimeout), Progress = progress };
                if (Recover)
                {
                    foreach (var each in LegacyTransfer.Recover(_store, file, options, _stop.Token))
                    {
                        var one = BmadLegacyImportResult.FromResult(each);
                        foreach (var skipped in one.Skipped)
                        {
                            WriteWarning($"{one.File}: event {skipped} was not imported.");
                        }

                        WriteObject(one);
                    }

                    return;
                }

                var result = BmadLegacyImportResult.FromResult(LegacyTransfer.Import(_store, file, options, _stop.Token));
                if (result.DamageOffset.HasValue)
                {
                    WriteWarning($"{file} is damaged from byte {result.DamageOffset}: the {result.EventsInFile} complete events before and after the damage were read (Repair-BmadStore -Path salvages the file itself).");
                }

                foreach (var skipped in result.Skipped)
                {
                    WriteWarning($"{file}: event {skipped} was not imported.");
                }

                WriteObject(result);
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C: whole batches already written stay (a rerun skips them: the import is idempotent).
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, file));
            }
            finally
            {
                progress.Complete();
            }
        }

        protected override void StopProcessing() => _stop.Cancel();

        public void Dispose()
        {
            _store?.Dispose();
            _stop.Dispose();
        }
    }
}
