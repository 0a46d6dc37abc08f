using System;
using System.Management.Automation;
using BmadGuard.Core;
using BmadGuard.Core.Monitoring;
using BmadGuard.Core.Storage;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>Get-BmadMonitor: whether a monitor is running for a store, since when, and what it last did (MonitorStatus.Read).</summary>
    [Cmdlet(VerbsCommon.Get, "BmadMonitor", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Get-BmadMonitor.md")]
    [OutputType(typeof(BmadMonitorStatus))]
    public sealed class GetBmadMonitorCommand : PSCmdlet
    {
        internal const string ErrorPrefix = "GetBmadMonitor";

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Path")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        protected override void ProcessRecord()
        {
            string path = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            try
            {
                if (!StorePaths.IsStore(path))
                {
                    throw new Core.BmadGuardException(ErrorCodes.StoreNotFound, FailureKind.StoreProblem, $"There is no BmadGuard store at '{path}'.", path);
                }

                WriteObject(new BmadMonitorStatus(MonitorStatus.Read(path)));
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, path));
            }
        }
    }
}
