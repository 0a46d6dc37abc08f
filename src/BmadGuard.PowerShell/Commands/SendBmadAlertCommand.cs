using System;
using System.Management.Automation;
using System.Threading;
using BmadGuard.Core;
using BmadGuard.Core.Alerts;
using BmadGuard.Core.Monitoring;
using BmadGuard.Core.Storage;
using BmadGuard.Infrastructure;

namespace BmadGuard.Commands
{
    /// <summary>
    /// Send-BmadAlert: sends one alert by hand, or a test alert (-Test), through every configured channel
    /// (AlertDispatcher.SendNowAsync) and reports each delivery. A channel that fails is a non-terminating error.
    /// </summary>
    [Cmdlet(VerbsCommunications.Send, "BmadAlert", HelpUri = "https://github.com/bmadguard/bmadguard/blob/main/docs/en-US/Send-BmadAlert.md", DefaultParameterSetName = MessageSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(BmadAlertDelivery))]
    public sealed class SendBmadAlertCommand : PSCmdlet, IDisposable
    {
        internal const string ErrorPrefix = "SendBmadAlert";
        private const string MessageSet = "Message";
        private const string TestSet = "Test";

        private readonly CancellationTokenSource _stop = new CancellationTokenSource();

        /// <summary>The alert's text.</summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = MessageSet, ValueFromPipeline = true)]
        [ValidateNotNullOrEmpty]
        public string? Message { get; set; }

        /// <summary>Send a test alert through every configured channel.</summary>
        [Parameter(Mandatory = true, ParameterSetName = TestSet)]
        public SwitchParameter Test { get; set; }

        /// <summary>Info, Warning (default), Error or Critical.</summary>
        [Parameter]
        [ValidateSet("Info", "Warning", "Error", "Critical", IgnoreCase = true)]
        public string Severity { get; set; } = "Warning";

        /// <summary>The store directory. Default: $env:BMADGUARD_STORE, else the per-user default store.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(BmadGuard.Completion.StoreCompleter))]
        public string? Store { get; set; }

        /// <summary>Slack incoming-webhook URL (a secret: never written to output, logs or errors).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? SlackWebhook { get; set; }

        /// <summary>Generic JSON webhook URL (a secret: never written to output, logs or errors).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? Webhook { get; set; }

        /// <summary>Configuration file with the channels (default: &lt;store&gt;/bmadguard.monitor.json when it exists).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ConfigPath { get; set; }

        protected override void ProcessRecord()
        {
            string store = BmadCmdletSupport.ResolveStorePath(this, Store, ErrorPrefix);
            try
            {
                string? configPath = ConfigPath == null ? null : BmadCmdletSupport.ResolveStorePath(this, ConfigPath, ErrorPrefix + "Config");
                var config = MonitorConfig.Load(store, configPath);
                config.OverrideChannels(SlackWebhook, Webhook);

                config.Validate();
                if (!StorePaths.IsStore(store))
                {
                    throw new Core.BmadGuardException(ErrorCodes.StoreNotFound, FailureKind.StoreProblem, $"There is no BmadGuard store at '{store}'.", store);
                }

                var redactor = new Redactor();
                var channels = AlertDispatcher.ChannelsFor(config.Alerts, redactor);
                if (channels.Count == 0)
                {
                    throw new Core.BmadGuardException(ErrorCodes.InvalidConfiguration, FailureKind.InvalidInput,
                        $"No alert channel is configured: give -SlackWebhook or -Webhook, or set alerts in '{System.IO.Path.Combine(store, MonitorConfig.FileName)}'.");
                }

                var severity = MonitorConfig.ParseSeverity(Severity);
                bool test = Test.IsPresent;
                var alert = new Alert(test ? "test:" + store : "manual:" + store, severity, test ? AlertKind.Test : AlertKind.Manual,
                    test ? "Test alert" : "Alert",
                    Message ?? $"This is a test alert from Send-BmadAlert -Test for the store '{store}'. If you read this, the channel works.", store);
                if (!ShouldProcess(store, $"Send a {severity} {(test ? "test " : "")}alert through {channels.Count} channel(s)"))
                {
                    return;
                }

                using var dispatcher = new AlertDispatcher(config.Alerts, channels, new AuditLog(store, redactor), redactor);
                foreach (var r in dispatcher.SendNowAsync(alert, _stop.Token).GetAwaiter().GetResult())
                {
                    var delivery = new BmadAlertDelivery(store, r.Channel, severity.ToString(), r.Delivered, r.Attempts, r.Error, test);
                    WriteObject(delivery);
                    if (!r.Delivered)
                    {
                        WriteError(new ErrorRecord(new InvalidOperationException($"The alert was not delivered through {r.Channel}: {r.Error}"),
                            ErrorPrefix + "DeliveryFailed", ErrorCategory.ConnectionError, delivery));
                    }
                }
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
