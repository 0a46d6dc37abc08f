using System;
using System.Management.Automation;
using System.Threading;
using BmadGuard.Core;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Health;
using BmadGuard.Core.Monitoring;
using BmadGuard.Core.Storage;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Get-BmadHealth: the health report (HealthChecker.Run): integrity, newest verified backup, monitor heartbeat,
    /// a round-trip probe, free disk, quarantine and outbox, as Healthy / Degraded / Unhealthy with evidence.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "BmadHealth", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Get-BmadHealth.md")]
    [OutputType(typeof(BmadHealthReport))]
    public sealed class GetBmadHealthCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "GetBmadHealth";

        private readonly CancellationTokenSource _stop = new CancellationTokenSource();

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("Path")]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        /// <summary>Configuration file with the limits (default: &lt;store&gt;/bmadguard.monitor.json when it exists).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ConfigPath { get; set; }

        /// <summary>Skip the write-path probe (the writers' lock and a scratch file; it writes no event).</summary>
        [Parameter]
        public SwitchParameter NoProbe { get; set; }

        protected override void ProcessRecord()
        {
            string store = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            try
            {
                string? configPath = ConfigPath == null ? null : BmadCmdletSupport.ResolveStorePath(this, ConfigPath, ErrorPrefix + "Config");
                var config = MonitorConfig.Load(store, configPath);
                config.Validate();
                if (!StorePaths.IsStore(store))
                {
                    throw new Core.BmadGuardException(ErrorCodes.StoreNotFound, FailureKind.StoreProblem, $"There is no BmadGuard store at '{store}'.", store);
                }

                WriteObject(new BmadHealthReport(HealthChecker.Run(store, config.Health, null, null, !NoProbe, config.Files, _stop.Token)));
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                WriteError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, store));
            }
        }

        protected override void StopProcessing() => _stop.Cancel();

        public void Dispose() => _stop.Dispose();
    }
}
