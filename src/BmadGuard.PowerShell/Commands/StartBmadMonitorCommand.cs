using System;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using BmadGuard.Core;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Monitoring;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Start-BmadMonitor: runs the monitor (StoreMonitor.Run, or RunOnce for -Once) on a worker task with a
    /// MonitorEventQueue as observer, and writes each event to the pipeline from the pipeline thread as it happens.
    /// Ctrl+C cancels the token: the monitor flushes its alerts, writes its last heartbeat and releases its lock.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Start, "BmadMonitor", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Start-BmadMonitor.md", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(BmadMonitorEvent))]
    public sealed class StartBmadMonitorCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "StartBmadMonitor";

        /// <summary>How long Ctrl+C waits for the monitor to flush alerts and write its last heartbeat.</summary>
        internal static readonly TimeSpan StopWait = TimeSpan.FromSeconds(15);

        private readonly CancellationTokenSource _stop = new CancellationTokenSource();

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter(Position = 0)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        /// <summary>Legacy JSON files to guard as well (e.g. shared_context.json).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[]? Path { get; set; }

        /// <summary>How often every target is checked (default 5 seconds, or the configuration file's): 500ms, 5s, 2m, a number of seconds or a TimeSpan.</summary>
        [Parameter]
        [DurationTransformation]
        public TimeSpan Interval { get; set; }

        /// <summary>What to do on damage: Alert, Repair (lossless only; the default) or Restore (repair, else restore the latest verified backup).</summary>
        [Parameter]
        [ValidateSet("Alert", "Repair", "Restore", IgnoreCase = true)]
        public string? OnDamage { get; set; }

        /// <summary>Take a verified backup this often: 30m, 1h, 1d, a number of seconds or a TimeSpan.</summary>
        [Parameter]
        [DurationTransformation]
        public TimeSpan BackupInterval { get; set; }

        /// <summary>Slack incoming-webhook URL (a secret: never written to output, logs or errors).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? SlackWebhook { get; set; }

        /// <summary>Generic JSON webhook URL (a secret: never written to output, logs or errors).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Webhook { get; set; }

        /// <summary>Configuration file (default: &lt;store&gt;/bmadguard.monitor.json when it exists).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ConfigPath { get; set; }

        /// <summary>One deep pass over every target (acting on damage), then stop.</summary>
        [Parameter]
        public SwitchParameter Once { get; set; }

        protected override void EndProcessing()
        {
            string store = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            MonitorConfig config;
            try
            {
                config = Configure(store);
            }
            catch (Core.BmadGuardException ex)
            {
                ThrowTerminatingError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, ConfigPath ?? store));
                return;
            }

            string targets = string.Join(", ", new[] { store }.Concat(config.Files));
            if (!ShouldProcess(targets, Once ? "Check once and act on damage" : $"Monitor every {config.Interval} (on damage: {config.OnDamage})"))
            {
                return;
            }

            using var queue = new MonitorEventQueue();
            using var monitor = new StoreMonitor(config, null, queue);
            MonitorPassSummary? summary = null;
            Task work;
            try
            {
                if (Once)
                {
                    work = Task.Factory.StartNew(() =>
                    {
                        try
                        {
                            summary = monitor.RunOnce(_stop.Token);
                        }
                        finally
                        {
                            queue.OnCompleted();
                        }
                    }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                }
                else
                {
                    // Claims the store here, on the pipeline thread: a second monitor fails now with a clear error.
                    monitor.Start();
                    work = Task.Factory.StartNew(() => monitor.Run(_stop.Token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                }
            }
            catch (Exception ex) when (BmadCmdletSupport.IsStoreFailure(ex))
            {
                ThrowTerminatingError(BmadCmdletSupport.ToErrorRecord(ex, ErrorPrefix, store));
                return;
            }

            bool stopped = true;
            try
            {
                foreach (var e in queue.GetConsumingEnumerable(_stop.Token))
                {
                    WriteObject(new BmadMonitorEvent(e, monitor.Redactor.Redact));
                }
            }
            finally
            {
                // Also when a downstream command stopped the pipeline (Select-Object -First) or Ctrl+C: the monitor
                // must stop, flush its alerts, write its last heartbeat and release its lock before it is disposed.
                _stop.Cancel();
                try
                {
                    stopped = work.Wait(StopWait);
                }
                catch (AggregateException)
                {
                    // Reported below from work.Exception.
                }
            }

            if (!stopped)
            {
                WriteWarning($"The monitor did not stop within {StopWait.TotalSeconds:0} s; its lock is released when this process ends.");
                return;
            }

            var failure = work.Exception?.InnerException;
            if (failure != null && !(failure is OperationCanceledException) && BmadCmdletSupport.IsStoreFailure(failure))
            {
                ThrowTerminatingError(BmadCmdletSupport.ToErrorRecord(failure, ErrorPrefix, store));
            }
            else if (failure != null && !(failure is OperationCanceledException))
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
            }

            if (summary != null && !summary.Healthy)
            {
                WriteError(new ErrorRecord(
                    BmadGuardException.Wrap(new Core.BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                        $"{summary.StillDamaged} of {summary.Targets} target(s) are still damaged after the pass (damaged {summary.Damaged}, healed {summary.Healed}).")),
                    ErrorPrefix + "DamageRemains", ErrorCategory.ReadError, store));
            }
        }

        private MonitorConfig Configure(string store)
        {
            string? configPath = ConfigPath == null ? null : BmadCmdletSupport.ResolveStorePath(this, ConfigPath, ErrorPrefix + "Config");
            var config = MonitorConfig.Load(store, configPath);
            foreach (string p in Path ?? Array.Empty<string>())
            {
                config.Files.Add(SessionState.Path.GetUnresolvedProviderPathFromPSPath(p));
            }

            var bound = MyInvocation.BoundParameters;
            if (bound.ContainsKey(nameof(Interval)))
            {
                config.Interval = Interval;
                if (config.DeepInterval < config.Interval)
                {
                    config.DeepInterval = config.Interval;
                }
            }

            if (OnDamage != null)
            {
                config.OnDamage = MonitorConfig.ParsePolicy(OnDamage);
            }

            if (bound.ContainsKey(nameof(BackupInterval)))
            {
                config.BackupInterval = BackupInterval;
            }

            config.OverrideChannels(SlackWebhook, Webhook);

            config.Validate();
            return config;
        }

        protected override void StopProcessing() => _stop.Cancel();

        public void Dispose() => _stop.Dispose();
    }
}
