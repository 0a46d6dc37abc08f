using System;
using System.Management.Automation;
using System.Threading;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>Get-BmadStoreStatistics: what a store holds (counts by type and source, seq and time range, bytes, segments).</summary>
    [Cmdlet(VerbsCommon.Get, "BmadStoreStatistics", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Get-BmadStoreStatistics.md")]
    [OutputType(typeof(BmadStoreStatistics))]
    public sealed class GetBmadStoreStatisticsCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "GetBmadStoreStatistics";

        private readonly CancellationTokenSource _stop = new CancellationTokenSource();

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Path")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        protected override void ProcessRecord()
        {
            string path = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            if (!BmadCmdletSupport.TryOpenStore(this, path, ErrorPrefix, out var opened))
            {
                return;
            }

            using var store = opened!;
            try
            {
                WriteObject(BmadStoreStatistics.FromStatistics(store.GetStatistics(_stop.Token)));
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                // One store that cannot be read does not stop the next one in the pipeline.
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, path));
            }
        }

        protected override void StopProcessing() => _stop.Cancel();

        public void Dispose() => _stop.Dispose();
    }
}
