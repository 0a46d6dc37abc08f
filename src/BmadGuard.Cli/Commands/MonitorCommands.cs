using System;
using System.Collections.Generic;
using System.CommandLine;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using BmadGuard.Core;
using BmadGuard.Core.Alerts;
using BmadGuard.Core.Events;
using BmadGuard.Core.Health;
using BmadGuard.Core.Monitoring;
using BmadGuard.Core.Outbox;
using BmadGuard.Core.Storage;

namespace BmadGuard.Cli
{
    /// <summary>
    /// monitor, alert, health: the monitoring issue's CLI contract.
    /// <code>
    /// bmadguard monitor --store DIR [--file F]... [--interval 5s] [--on-damage alert|repair|restore]
    ///                   [--backup-interval 1h] [--slack-webhook URL] [--webhook URL] [--config FILE] [--once] [--status]
    /// bmadguard alert   --store DIR --test
    /// bmadguard health  --store DIR            (exit 0 healthy, 1 degraded, 2 unhealthy)
    /// </code>
    /// Every behaviour is one call into BmadGuard.Core (StoreMonitor, MonitorStatus, AlertDispatcher, HealthChecker,
    /// PublishOrSpool), so the cmdlets make the same calls.
    /// </summary>
    internal static class MonitorCommands
    {
        public static void Register(RootCommand root)
        {
            root.Subcommands.Add(Monitor());
            root.Subcommands.Add(Alert());
            root.Subcommands.Add(Health());
        }

        private sealed class ConfigOptions
        {
            public Option<string?> Store = CliSupport.StoreOption();
            public Option<string?> Config = new Option<string?>("--config") { Description = $"Configuration file (default: <store>/{MonitorConfig.FileName} when it exists)." };
            public Option<string?> Slack = new Option<string?>("--slack-webhook") { Description = "Slack incoming-webhook URL (a secret: never printed or logged)." };
            public Option<string?> Webhook = new Option<string?>("--webhook") { Description = "Generic JSON webhook URL (a secret: never printed or logged)." };

            public MonitorConfig Load(ParseResult parse)
            {
                string store = CliSupport.ResolveStore(parse.GetValue(Store));
                var config = MonitorConfig.Load(store, parse.GetValue(Config));
                config.OverrideChannels(parse.GetValue(Slack), parse.GetValue(Webhook));

                return config;
            }
        }

        private static Command Monitor()
        {
            var o = new ConfigOptions();
            var files = new Option<string[]>("--file") { Description = "A legacy JSON file to guard (repeatable).", Arity = ArgumentArity.ZeroOrMore };
            var interval = new Option<string?>("--interval") { Description = "How often every target is checked (default 5s): 500ms, 5s, 2m, 1h." };
            var onDamage = new Option<string?>("--on-damage") { Description = "alert | repair (lossless only, the default) | restore (repair, else restore the latest verified backup)." };
            var backupInterval = new Option<string?>("--backup-interval") { Description = "Take a scheduled backup this often (e.g. 1h); retention from \"backupKeep\" in the configuration (default: last 24, daily 7)." };
            var once = new Option<bool>("--once") { Description = "One deep pass over every target (acting on damage), then exit: 0 healthy, 1 damage remains." };
            var status = new Option<bool>("--status") { Description = "Show whether a monitor is running for the store (heartbeat fresh and lock held): exit 0 alive, 1 not." };
            var cmd = new Command("monitor",
                "Watches stores and guarded JSON files: fast detection (file-system notifications) plus a periodic check and a deep verify; " +
                "acts on damage by policy; alerts; audit log, heartbeat, metrics. Prints one JSON line per event. Stops cleanly on Ctrl+C and SIGTERM.")
            {
                o.Store, files, interval, onDamage, backupInterval, o.Slack, o.Webhook, o.Config, once, status,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                if (parse.GetValue(status))
                {
                    var st = MonitorStatus.Read(CliSupport.ResolveStore(parse.GetValue(o.Store)));
                    WriteJsonLine(st.WriteJson);
                    return st.Alive ? ExitCodes.Success : ExitCodes.StoreProblem;
                }

                var config = o.Load(parse);
                foreach (var f in parse.GetValue(files) ?? Array.Empty<string>())
                {
                    config.Files.Add(Path.GetFullPath(f));
                }

                if (parse.GetValue(interval) is string iv)
                {
                    config.Interval = Durations.Parse(iv, "--interval");
                    if (config.DeepInterval < config.Interval)
                    {
                        config.DeepInterval = config.Interval;
                    }
                }

                if (parse.GetValue(onDamage) is string od)
                {
                    config.OnDamage = MonitorConfig.ParsePolicy(od);
                }

                if (parse.GetValue(backupInterval) is string bi)
                {
                    config.BackupInterval = Durations.Parse(bi, "--backup-interval");
                }

                config.Validate();
                var redactor = SecretsOf(config);
                var observer = new JsonLineObserver(redactor);
                if (parse.GetValue(once))
                {
                    using var signals = CliSupport.CancelOnSignal();
                    using var monitor = new StoreMonitor(config, null, observer);
                    var summary = monitor.RunOnce(signals.Token);
                    // A monitor that could not write its heartbeat, audit log or metrics did not do its job: exit 1.
                    return summary.Healthy && summary.WriteErrors == 0 ? ExitCodes.Success : ExitCodes.StoreProblem;
                }

                return RunHosted(config, observer);
            }));
            return cmd;
        }

        /// <summary>
        /// The long-lived process: SIGINT (Ctrl+C), SIGTERM and SIGQUIT cancel the monitor's token (the signal does not
        /// kill the process); the monitor then flushes alerts, writes its last heartbeat and releases its lock. It gets
        /// <see cref="ShutdownTimeout"/> for that, after which the process exits anyway (the monitor lock is an OS lock,
        /// so a stop cut short blocks no restart). This is what Microsoft.Extensions.Hosting's console lifetime did,
        /// without its start-up cost (and trimming warnings) in every bmadguard process. There is no sd_notify: run it
        /// as <c>Type=simple</c> with <c>KillSignal=SIGTERM</c> and <c>Restart=on-failure</c>.
        /// </summary>
        private static int RunHosted(MonitorConfig config, JsonLineObserver observer)
        {
            using var monitor = new StoreMonitor(config, null, observer);
            monitor.Start(); // claims the stores now: a second monitor fails here with a clear message
            using var signals = CliSupport.CancelOnSignal(includeQuit: true);
            using var finished = new ManualResetEventSlim();
            Exception? failure = null;
            var worker = new Thread(() =>
            {
                try
                {
                    monitor.Run(signals.Token);
                }
                catch (OperationCanceledException)
                {
                }
                catch (Exception ex)
                {
                    failure = ex;
                }
                finally
                {
                    finished.Set();
                }
            })
            { IsBackground = true, Name = "bmadguard monitor" };
            worker.Start();
            if (WaitHandle.WaitAny(new[] { finished.WaitHandle, signals.Token.WaitHandle }) == 1)
            {
                finished.Wait(ShutdownTimeout);
            }

            if (failure != null)
            {
                if (failure is BmadGuardException)
                {
                    throw failure;
                }

                Console.Error.WriteLine("bmadguard: MonitorFailed: " + monitor.Redactor.Redact(failure.Message));
                return ExitCodes.StoreProblem;
            }

            return ExitCodes.Success;
        }

        /// <summary>How long a stopping monitor may take to flush alerts and release its lock.</summary>
        private static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(15);

        private static Command Alert()
        {
            var o = new ConfigOptions();
            var test = new Option<bool>("--test") { Description = "Send a test alert through every configured channel and report each delivery." };
            var message = new Option<string?>("--message") { Description = "Send this alert by hand instead of the test text." };
            var severity = new Option<string?>("--severity") { Description = "info | warning | error | critical (default warning)." };
            var cmd = new Command("alert", "Sends an alert through every configured channel (Slack, webhook, email, audit log). Exit 0 when every channel delivered, 1 otherwise.")
            {
                o.Store, test, message, severity, o.Slack, o.Webhook, o.Config,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                bool isTest = parse.GetValue(test);
                string? text = parse.GetValue(message);
                if (!isTest && text == null)
                {
                    throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, "alert needs --test (or --message TEXT).");
                }

                var config = o.Load(parse);
                config.Validate();
                string store = config.Stores[0];
                if (!StorePaths.IsStore(store))
                {
                    FileEventStore.Open(store).Dispose();
                }

                var redactor = new Redactor();
                var channels = AlertDispatcher.ChannelsFor(config.Alerts, redactor);
                if (channels.Count == 0)
                {
                    throw new BmadGuardException(ErrorCodes.InvalidConfiguration, FailureKind.InvalidInput,
                        $"No alert channel is configured: give --slack-webhook or --webhook, or set alerts in '{Path.Combine(store, MonitorConfig.FileName)}'.");
                }

                var sev = parse.GetValue(severity) is string sv ? MonitorConfig.ParseSeverity(sv) : AlertSeverity.Warning;
                var alert = new Alert(isTest ? "test:" + store : "manual:" + store, sev, isTest ? AlertKind.Test : AlertKind.Manual,
                    isTest ? "Test alert" : "Alert",
                    text ?? $"This is a test alert from 'bmadguard alert --test' for the store '{store}'. If you read this, the channel works.", store);
                using var dispatcher = new AlertDispatcher(config.Alerts, channels, new AuditLog(store, redactor), redactor);
                using var signals = CliSupport.CancelOnSignal();
                var results = dispatcher.SendNowAsync(alert, signals.Token).GetAwaiter().GetResult();
                bool all = true;
                WriteJsonLine(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("store", store);
                    w.WriteString("kind", alert.Kind.ToString().ToLowerInvariant());
                    w.WriteString("severity", alert.Severity.ToString().ToLowerInvariant());
                    w.WriteStartArray("channels");
                    foreach (var r in results)
                    {
                        all &= r.Delivered;
                        w.WriteStartObject();
                        w.WriteString("channel", r.Channel);
                        w.WriteBoolean("delivered", r.Delivered);
                        w.WriteNumber("attempts", r.Attempts);
                        w.WriteString("error", r.Error);
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                    w.WriteEndObject();
                });
                foreach (var r in results)
                {
                    if (!r.Delivered)
                    {
                        Console.Error.WriteLine($"bmadguard: AlertDeliveryFailed: {r.Channel}: {r.Error}");
                    }
                }

                return all ? ExitCodes.Success : ExitCodes.StoreProblem;
            }));
            return cmd;
        }

        private static Command Health()
        {
            var store = CliSupport.StoreOption();
            var config = new Option<string?>("--config") { Description = $"Configuration file for the limits (default: <store>/{MonitorConfig.FileName} when it exists)." };
            var cmd = new Command("health", "Health report as JSON (read-only: writes no event): integrity, newest verified backup, damaged backups, monitor, write-path probe, free disk, quarantine, outbox. Exit 0 healthy, 1 degraded, 2 unhealthy.")
            {
                store, config,
            };
            cmd.SetAction(parse => CliSupport.Run(() =>
            {
                string dir = CliSupport.ResolveStore(parse.GetValue(store));
                var cfg = MonitorConfig.Load(dir, parse.GetValue(config));
                cfg.Validate();
                if (!StorePaths.IsStore(dir))
                {
                    FileEventStore.Open(dir).Dispose();
                }

                var report = HealthChecker.Run(dir, cfg.Health, null, null, true, cfg.Files);
                WriteJsonLine(report.WriteJson, indented: true);
                return (int)report.Status;
            }));
            return cmd;
        }

        /// <summary>
        /// publish --spool: publish, or spool to the outbox when the store refuses (lock timeout, disk full, damage).
        /// Opt-in, because it changes publish's promise: without it a printed event is in the store; with it a
        /// line may say <c>{"spooled":true,...}</c>: durable in the outbox, in the store once the monitor replays it.
        /// </summary>
        internal static int PublishOrSpoolCli(string? store, IReadOnlyList<EventDraft> drafts, double lockTimeoutSeconds)
        {
            var result = PublishOrSpool.Run(CliSupport.ResolveStore(store), drafts, new StoreOpenOptions { LockTimeout = TimeSpan.FromSeconds(lockTimeoutSeconds) });
            using var stdout = CliSupport.StdOut();
            if (result.Status == PublishStatus.Published)
            {
                foreach (var r in result.Published)
                {
                    r.WriteJsonLine(stdout);
                }

                return ExitCodes.Success;
            }

            Console.Error.WriteLine($"bmadguard: notice: Spooled: the store refused ({result.ReasonCode}: {result.Reason}); {result.Spooled.Count} event(s) are in the outbox and will be replayed by the monitor.");
            foreach (var s in result.Spooled)
            {
                using (var w = CliSupport.JsonWriter(stdout))
                {
                    w.WriteStartObject();
                    w.WriteBoolean("spooled", true);
                    w.WriteString("id", s.Id);
                    w.WriteNumber("outboxSeq", s.OutboxSeq);
                    w.WriteString("type", s.Type);
                    w.WriteString("reason", result.ReasonCode);
                    w.WriteEndObject();
                }

                stdout.WriteByte((byte)'\n');
            }

            return ExitCodes.Success;
        }

        private static Redactor SecretsOf(MonitorConfig config)
        {
            var r = new Redactor();
            r.AddSecret(config.Alerts.SlackWebhook);
            r.AddSecret(config.Alerts.Webhook);
            r.AddSecret(config.Alerts.Smtp?.ResolvePassword());
            return r;
        }

        private static void WriteJsonLine(Action<Utf8JsonWriter> write, bool indented = false)
        {
            using var stdout = CliSupport.StdOut();
            using (var w = CliSupport.JsonWriter(stdout, indented))
            {
                write(w);
            }

            stdout.WriteByte((byte)'\n');
            stdout.Flush();
        }

        /// <summary>Prints each monitor event as one JSON line on stdout (redacted), as soon as it happens.</summary>
        private sealed class JsonLineObserver : IObserver<MonitorEvent>
        {
            private readonly Redactor _redactor;
            private readonly Stream _stdout = CliSupport.StdOut();
            private readonly object _gate = new object();

            public JsonLineObserver(Redactor redactor) => _redactor = redactor;

            public void OnNext(MonitorEvent value)
            {
                if (value is WriteFailed failed)
                {
                    // Never silent: the monitor's own files failing (a full disk) is said on stderr as it happens.
                    Console.Error.WriteLine($"bmadguard: MonitorWriteFailed: {_redactor.Redact(failed.Message)}");
                }

                var buffer = new MemoryStream();
                using (var w = CliSupport.JsonWriter(buffer))
                {
                    value.WriteJson(w);
                }

                byte[] line = Encoding.UTF8.GetBytes(_redactor.Redact(Encoding.UTF8.GetString(buffer.ToArray())) + "\n");
                lock (_gate)
                {
                    try
                    {
                        _stdout.Write(line, 0, line.Length);
                        _stdout.Flush();
                    }
                    catch (IOException)
                    {
                        // stdout closed (the reader went away): the monitor keeps running.
                    }
                }
            }

            public void OnError(Exception error)
            {
            }

            public void OnCompleted()
            {
            }
        }
    }
}
