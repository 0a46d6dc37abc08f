using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using BmadGuard.Core.Monitoring;
using Polly;
using Polly.Retry;

namespace BmadGuard.Core.Alerts
{
    /// <summary>The result of delivering one alert through one channel.</summary>
    public sealed class DeliveryResult
    {
        public DeliveryResult(string channel, bool delivered, int attempts, string? error)
        {
            Channel = channel;
            Delivered = delivered;
            Attempts = attempts;
            Error = error;
        }

        public string Channel { get; }
        public bool Delivered { get; }
        public int Attempts { get; }

        /// <summary>Why it failed, redacted.</summary>
        public string? Error { get; }
    }

    /// <summary>
    /// Decides which alerts go out and delivers them.
    /// <list type="bullet">
    /// <item>Every alert (sent or not) is written to the audit log: that channel always works when the disk does.</item>
    /// <item>De-duplication: the same problem (key) at the same severity is sent once per <see cref="AlertSettings.DedupeWindow"/>.</item>
    /// <item>Escalation: a problem still open after <see cref="AlertSettings.EscalateAfter"/> (and each multiple of it) is
    /// raised again one severity higher, up to Critical.</item>
    /// <item>Resolution: <see cref="Resolve"/> sends a "resolved" message for an open problem.</item>
    /// <item>Delivery runs in the background, one queue per channel (order kept per channel), with a Polly retry
    /// pipeline (exponential backoff) and a time limit per attempt. A channel that fails is reported (audit +
    /// <see cref="AlertFailed"/>) and never stops the caller.</item>
    /// </list>
    /// </summary>
    public sealed class AlertDispatcher : IDisposable
    {
        private sealed class Problem
        {
            public DateTimeOffset FirstRaised;
            public DateTimeOffset LastSent;
            public AlertSeverity Severity;
            public int Escalations;
            public string Title = "";
            public string Target = "";
            public bool Sent;
        }

        private readonly AlertSettings _settings;
        private readonly IReadOnlyList<IAlertChannel> _channels;
        private readonly AuditLog? _audit;
        private readonly Redactor _redactor;
        private readonly Action<MonitorEvent> _emit;
        private readonly Func<DateTimeOffset> _clock;
        private readonly ResiliencePipeline _pipeline;
        private readonly Dictionary<string, Problem> _open = new Dictionary<string, Problem>(StringComparer.Ordinal);
        private readonly Dictionary<string, Task> _tails = new Dictionary<string, Task>(StringComparer.Ordinal);
        private readonly CancellationTokenSource _stopping = new CancellationTokenSource();
        private readonly object _gate = new object();
        private long _sent, _failed, _suppressed;

        public AlertDispatcher(AlertSettings settings, IReadOnlyList<IAlertChannel> channels, AuditLog? audit, Redactor redactor, Action<MonitorEvent>? emit = null, Func<DateTimeOffset>? clock = null)
        {
            _settings = settings;
            _channels = channels;
            _audit = audit;
            _redactor = redactor;
            _emit = emit ?? (_ => { });
            _clock = clock ?? (() => DateTimeOffset.UtcNow);
            var builder = new ResiliencePipelineBuilder();
            if (settings.Retries > 0)
            {
                builder.AddRetry(new RetryStrategyOptions
                {
                    MaxRetryAttempts = settings.Retries,
                    BackoffType = DelayBackoffType.Exponential,
                    Delay = settings.RetryDelay,
                    UseJitter = true,
                    ShouldHandle = new PredicateBuilder().Handle<Exception>(ex => !(ex is OperationCanceledException) || ex is Polly.Timeout.TimeoutRejectedException),
                });
            }

            _pipeline = builder.AddTimeout(settings.Timeout).Build();
        }

        /// <summary>Builds the channels a configuration names and registers their secrets with the redactor.</summary>
        public static List<IAlertChannel> ChannelsFor(AlertSettings settings, Redactor redactor)
        {
            var channels = new List<IAlertChannel>();
            if (!string.IsNullOrEmpty(settings.SlackWebhook))
            {
                redactor.AddSecret(settings.SlackWebhook);
                channels.Add(new SlackChannel(settings.SlackWebhook!));
            }

            if (!string.IsNullOrEmpty(settings.Webhook))
            {
                redactor.AddSecret(settings.Webhook);
                channels.Add(new WebhookChannel(settings.Webhook!));
            }

            if (settings.Smtp != null)
            {
                redactor.AddSecret(settings.Smtp.ResolvePassword());
                channels.Add(new SmtpChannel(settings.Smtp, settings.Timeout));
            }

            return channels;
        }

        public IReadOnlyList<IAlertChannel> Channels => _channels;

        public long Sent => Interlocked.Read(ref _sent);
        public long Failed => Interlocked.Read(ref _failed);
        public long Suppressed => Interlocked.Read(ref _suppressed);

        /// <summary>Keys of the problems currently open.</summary>
        public IReadOnlyList<string> OpenProblems
        {
            get
            {
                lock (_gate)
                {
                    return _open.Keys.ToList();
                }
            }
        }

        /// <summary>Raises (or keeps raising) a problem. Returns the alert sent, or null when it was de-duplicated.</summary>
        public Alert? Raise(string key, AlertSeverity severity, string title, string text, string target)
        {
            Alert? alert = null;
            lock (_gate)
            {
                var now = _clock();
                if (!_open.TryGetValue(key, out var p))
                {
                    p = new Problem { FirstRaised = now, Severity = severity, Title = title, Target = target };
                    _open[key] = p;
                    alert = new Alert(key, severity, AlertKind.Raised, title, text, target, now);
                }
                else if (severity > p.Severity)
                {
                    p.Severity = severity;
                    alert = new Alert(key, severity, AlertKind.Raised, title, text, target, now);
                }
                else if (p.Severity < AlertSeverity.Critical && now - p.FirstRaised >= Multiply(_settings.EscalateAfter, p.Escalations + 1))
                {
                    p.Escalations++;
                    p.Severity++;
                    alert = new Alert(key, p.Severity, AlertKind.Escalated, title,
                        $"{text}\nStill not resolved {Durations.Format(TimeSpan.FromSeconds(Math.Round((now - p.FirstRaised).TotalSeconds)))} after it was first raised.", target, now);
                }
                else if (now - p.LastSent >= _settings.DedupeWindow)
                {
                    alert = new Alert(key, p.Severity, AlertKind.Reminder, title, text, target, now);
                }
                else
                {
                    Interlocked.Increment(ref _suppressed);
                    return null;
                }

                p.LastSent = now;
                p.Title = title;
                p.Sent |= alert.Severity >= _settings.MinSeverity;
            }

            Dispatch(alert);
            return alert;
        }

        /// <summary>Closes a problem; sends "resolved" when it had been sent to the channels. Returns the alert, or null when nothing was open.</summary>
        public Alert? Resolve(string key, string text)
        {
            Problem? p;
            lock (_gate)
            {
                if (!_open.TryGetValue(key, out p))
                {
                    return null;
                }

                _open.Remove(key);
            }

            var alert = new Alert(key, p.Severity, AlertKind.Resolved, p.Title, text, p.Target, _clock());
            Dispatch(alert, toChannels: p.Sent);
            return alert;
        }

        /// <summary>Sends one alert through every channel now (tests of a configuration, Send-BmadAlert), bypassing de-duplication.</summary>
        public async Task<IReadOnlyList<DeliveryResult>> SendNowAsync(Alert alert, CancellationToken cancellationToken)
        {
            Audit(alert, "alert.raised", null);
            var tasks = _channels.Select(c => DeliverAsync(c, alert, cancellationToken)).ToList();
            return await Task.WhenAll(tasks).ConfigureAwait(false);
        }

        private void Dispatch(Alert alert, bool toChannels = true)
        {
            bool send = toChannels && (alert.Severity >= _settings.MinSeverity || alert.Kind == AlertKind.Resolved);
            Audit(alert, alert.Kind == AlertKind.Resolved ? "alert.resolved" : "alert.raised", send ? null : "audit log only (below the channels' minimum severity)");
            if (!send)
            {
                return;
            }

            lock (_gate)
            {
                foreach (var channel in _channels)
                {
                    _tails.TryGetValue(channel.Name, out var tail);
                    tail ??= Task.CompletedTask;
                    _tails[channel.Name] = tail.ContinueWith(_ => DeliverAsync(channel, alert, _stopping.Token), CancellationToken.None,
                        TaskContinuationOptions.None, TaskScheduler.Default).Unwrap();
                }
            }
        }

        private async Task<DeliveryResult> DeliverAsync(IAlertChannel channel, Alert alert, CancellationToken ct)
        {
            int attempts = 0;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                await _pipeline.ExecuteAsync(async token =>
                {
                    Interlocked.Increment(ref attempts);
                    await channel.SendAsync(alert, token).ConfigureAwait(false);
                }, ct).ConfigureAwait(false);
                Interlocked.Increment(ref _sent);
                _audit?.Write("alert.delivered", alert.Target, "delivered", $"{alert.Headline} via {channel.Name}", clock.Elapsed,
                    new Dictionary<string, object?> { ["channel"] = channel.Name, ["key"] = alert.Key, ["attempts"] = attempts, ["kind"] = alert.Kind });
                Emit(new AlertSent(alert, channel.Name, attempts));
                return new DeliveryResult(channel.Name, true, attempts, null);
            }
            catch (Exception ex)
            {
                Interlocked.Increment(ref _failed);
                string error = _redactor.Redact(Describe(ex));
                _audit?.Write("alert.failed", alert.Target, "failed", $"{alert.Headline} could not be delivered via {channel.Name}: {error}", clock.Elapsed,
                    new Dictionary<string, object?> { ["channel"] = channel.Name, ["key"] = alert.Key, ["attempts"] = attempts, ["error"] = error });
                Emit(new AlertFailed(alert, channel.Name, attempts, error));
                return new DeliveryResult(channel.Name, false, attempts, error);
            }
        }

        private static string Describe(Exception ex)
        {
            if (ex is Polly.Timeout.TimeoutRejectedException t)
            {
                return $"no answer within {Durations.Format(t.Timeout)}";
            }

            var parts = new List<string>();
            for (var e = ex; e != null && parts.Count < 3; e = e.InnerException)
            {
                if (!parts.Contains(e.Message))
                {
                    parts.Add(e.Message);
                }
            }

            return ex.GetType().Name + ": " + string.Join(" <- ", parts);
        }

        private void Audit(Alert alert, string action, string? note)
        {
            _audit?.Write(action, alert.Target, alert.Kind.ToString().ToLowerInvariant(), alert.Headline + ": " + alert.Text + (note == null ? "" : " [" + note + "]"), null,
                new Dictionary<string, object?> { ["key"] = alert.Key, ["severity"] = alert.Severity, ["kind"] = alert.Kind });
        }

        private void Emit(MonitorEvent e)
        {
            try
            {
                _emit(e);
            }
            catch (Exception)
            {
                // An observer's failure must not stop alert delivery.
            }
        }

        private static TimeSpan Multiply(TimeSpan t, int n) => TimeSpan.FromTicks(t.Ticks * n);

        /// <summary>Waits for queued deliveries (up to <paramref name="timeout"/>).</summary>
        public bool Flush(TimeSpan timeout)
        {
            Task[] tails;
            lock (_gate)
            {
                tails = _tails.Values.ToArray();
            }

            try
            {
                return Task.WaitAll(tails, timeout);
            }
            catch (AggregateException)
            {
                return true;
            }
        }

        public void Dispose()
        {
            Flush(TimeSpan.FromSeconds(5));
            _stopping.Cancel();
            Flush(TimeSpan.FromSeconds(1));
            _stopping.Dispose();
        }
    }
}
