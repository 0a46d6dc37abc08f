using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Alerts;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>
    /// Everything the monitor reports, as typed objects for a pipeline (Start-BmadMonitor) and as one JSON line
    /// each for the CLI. Events come from the monitor's thread and from alert delivery; <see cref="MonitorEventQueue"/>
    /// hands them to a single consumer thread (a cmdlet may only WriteObject from its own thread).
    /// </summary>
    public abstract class MonitorEvent
    {
        protected MonitorEvent(string target, string message)
        {
            Time = DateTimeOffset.UtcNow;
            Target = target;
            Message = message;
        }

        public DateTimeOffset Time { get; }

        /// <summary>The store or guarded file the event is about.</summary>
        public string Target { get; }

        public string Message { get; }

        /// <summary>The event's name: Checked, DamageDetected, Repaired, Restored, AlertSent, AlertFailed, BackupTaken, BackupDamaged, BackupDamageCleared, OutboxReplayed.</summary>
        public string Event => GetType().Name;

        public void WriteJson(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteString("event", Event);
            w.WriteString("time", Time.ToString("o", CultureInfo.InvariantCulture));
            w.WriteString("target", Target);
            WriteFields(w);
            w.WriteString("message", Message);
            w.WriteEndObject();
        }

        protected abstract void WriteFields(Utf8JsonWriter w);

        public override string ToString() => $"{Event} {Target}: {Message}";
    }

    public sealed class Checked : MonitorEvent
    {
        public Checked(IntegrityResult result)
            : base(result.Target, result.Ok ? "ok" : $"{result.Findings.Count} finding(s)")
        {
            Deep = result.Deep;
            Ok = result.Ok;
            Findings = result.Findings.Count;
            BytesChecked = result.BytesChecked;
            Duration = result.Duration;
        }

        public bool Deep { get; }
        public bool Ok { get; }
        public int Findings { get; }
        public long BytesChecked { get; }
        public TimeSpan Duration { get; }

        protected override void WriteFields(Utf8JsonWriter w)
        {
            w.WriteBoolean("deep", Deep);
            w.WriteBoolean("ok", Ok);
            w.WriteNumber("findings", Findings);
            w.WriteNumber("bytesChecked", BytesChecked);
            w.WriteNumber("durationMs", Math.Round(Duration.TotalMilliseconds, 3));
        }
    }

    public sealed class DamageDetected : MonitorEvent
    {
        public DamageDetected(IntegrityResult result, DamagePolicy policy)
            : base(result.Target, string.Join(" ", FindingMessages(result.Findings)))
        {
            Findings = result.Findings;
            Policy = policy;
            Deep = result.Deep;
        }

        public IReadOnlyList<IntegrityFinding> Findings { get; }
        public DamagePolicy Policy { get; }
        public bool Deep { get; }

        private static IEnumerable<string> FindingMessages(IReadOnlyList<IntegrityFinding> findings)
        {
            foreach (var f in findings)
            {
                yield return f.Message;
            }
        }

        protected override void WriteFields(Utf8JsonWriter w)
        {
            w.WriteString("policy", Policy.ToString().ToLowerInvariant());
            w.WriteBoolean("deep", Deep);
            w.WriteStartArray("findings");
            foreach (var f in Findings)
            {
                w.WriteStartObject();
                w.WriteString("kind", f.Kind.ToString());
                w.WriteString("path", f.Path);
                if (f.Offset.HasValue)
                {
                    w.WriteNumber("offset", f.Offset.Value);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
        }
    }

    /// <summary>Base of Repaired and Restored: what the healer did, and whether the check afterwards was clean.</summary>
    public abstract class HealEvent : MonitorEvent
    {
        protected HealEvent(string target, HealResult result, bool verified, TimeSpan duration, TimeSpan recoveryTime)
            : base(target, result.Message)
        {
            Outcome = result.Outcome;
            Verified = verified;
            Quarantined = result.Quarantined;
            Duration = duration;
            RecoveryTime = recoveryTime;
            RestoredFrom = result.RestoredFrom;
        }

        public HealOutcome Outcome { get; }

        /// <summary>True when the check run after the action found the target clean.</summary>
        public bool Verified { get; }
        public IReadOnlyList<string> Quarantined { get; }
        public TimeSpan Duration { get; }

        /// <summary>From the damage being detected to the target verified healthy.</summary>
        public TimeSpan RecoveryTime { get; }
        public string? RestoredFrom { get; }

        protected override void WriteFields(Utf8JsonWriter w)
        {
            w.WriteString("outcome", Outcome.ToString());
            w.WriteBoolean("verified", Verified);
            w.WriteStartArray("quarantined");
            foreach (var q in Quarantined)
            {
                w.WriteStringValue(q);
            }

            w.WriteEndArray();
            if (RestoredFrom != null)
            {
                w.WriteString("restoredFrom", RestoredFrom);
            }

            w.WriteNumber("durationMs", Math.Round(Duration.TotalMilliseconds, 3));
            w.WriteNumber("recoveryMs", Math.Round(RecoveryTime.TotalMilliseconds, 3));
        }
    }

    public sealed class Repaired : HealEvent
    {
        public Repaired(string target, HealResult result, bool verified, TimeSpan duration, TimeSpan recoveryTime)
            : base(target, result, verified, duration, recoveryTime)
        {
        }
    }

    public sealed class Restored : HealEvent
    {
        public Restored(string target, HealResult result, bool verified, TimeSpan duration, TimeSpan recoveryTime)
            : base(target, result, verified, duration, recoveryTime)
        {
        }
    }

    public sealed class AlertSent : MonitorEvent
    {
        public AlertSent(Alert alert, string channel, int attempts)
            : base(alert.Target, alert.Headline)
        {
            Channel = channel;
            Severity = alert.Severity;
            Kind = alert.Kind;
            Key = alert.Key;
            Attempts = attempts;
        }

        public string Channel { get; }
        public AlertSeverity Severity { get; }
        public AlertKind Kind { get; }
        public string Key { get; }
        public int Attempts { get; }

        protected override void WriteFields(Utf8JsonWriter w)
        {
            w.WriteString("channel", Channel);
            w.WriteString("severity", Severity.ToString().ToLowerInvariant());
            w.WriteString("kind", Kind.ToString().ToLowerInvariant());
            w.WriteString("key", Key);
            w.WriteNumber("attempts", Attempts);
        }
    }

    /// <summary>A channel that could not deliver after its retries. The error text is redacted.</summary>
    public sealed class AlertFailed : MonitorEvent
    {
        public AlertFailed(Alert alert, string channel, int attempts, string error)
            : base(alert.Target, $"Alert '{alert.Title}' could not be delivered through {channel} after {attempts} attempt(s): {error}")
        {
            Channel = channel;
            Severity = alert.Severity;
            Key = alert.Key;
            Attempts = attempts;
            Error = error;
        }

        public string Channel { get; }
        public AlertSeverity Severity { get; }
        public string Key { get; }
        public int Attempts { get; }
        public string Error { get; }

        protected override void WriteFields(Utf8JsonWriter w)
        {
            w.WriteString("channel", Channel);
            w.WriteString("severity", Severity.ToString().ToLowerInvariant());
            w.WriteString("key", Key);
            w.WriteNumber("attempts", Attempts);
            w.WriteString("error", Error);
        }
    }

    public sealed class BackupTaken : MonitorEvent
    {
        public BackupTaken(string target, BackupResult result, TimeSpan duration)
            : base(target, result.Message)
        {
            Available = result.Available;
            Success = result.Success;
            Backup = result.Backup?.Name;
            Duration = duration;
        }

        public bool Available { get; }
        public bool Success { get; }
        public string? Backup { get; }
        public TimeSpan Duration { get; }

        protected override void WriteFields(Utf8JsonWriter w)
        {
            w.WriteBoolean("available", Available);
            w.WriteBoolean("success", Success);
            if (Backup != null)
            {
                w.WriteString("backup", Backup);
            }

            w.WriteNumber("durationMs", Math.Round(Duration.TotalMilliseconds, 3));
        }
    }

    /// <summary>
    /// A backup of the store does not match its manifest (found by the deep schedule's backup sweep). The store itself
    /// is not touched for it; restore skips the backup. Raised again only when the damage changes.
    /// </summary>
    public sealed class BackupDamaged : MonitorEvent
    {
        public BackupDamaged(string store, BackupProblem problem)
            : base(store, string.Join(" ", problem.Findings.Select(f => f.Message)))
        {
            Backup = problem.Name;
            BackupPath = problem.Path;
            Findings = problem.Findings;
            Codes = problem.Codes;
        }

        public string Backup { get; }
        public string BackupPath { get; }
        public IReadOnlyList<IntegrityFinding> Findings { get; }
        public IReadOnlyList<string> Codes { get; }

        protected override void WriteFields(Utf8JsonWriter w)
        {
            w.WriteString("backup", Backup);
            w.WriteString("backupPath", BackupPath);
            w.WriteStartArray("findings");
            for (int i = 0; i < Findings.Count; i++)
            {
                w.WriteStartObject();
                w.WriteString("code", Codes[i]);
                w.WriteString("file", Findings[i].Path);
                if (Findings[i].Offset.HasValue)
                {
                    w.WriteNumber("offset", Findings[i].Offset!.Value);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
        }
    }

    /// <summary>A backup reported damaged verifies again, or is gone.</summary>
    public sealed class BackupDamageCleared : MonitorEvent
    {
        public BackupDamageCleared(string store, string backup, string backupPath, bool gone)
            : base(store, gone ? $"Backup '{backup}' is gone." : $"Backup '{backup}' verifies again.")
        {
            Backup = backup;
            BackupPath = backupPath;
            Gone = gone;
        }

        public string Backup { get; }
        public string BackupPath { get; }
        public bool Gone { get; }

        protected override void WriteFields(Utf8JsonWriter w)
        {
            w.WriteString("backup", Backup);
            w.WriteString("backupPath", BackupPath);
            w.WriteBoolean("gone", Gone);
        }
    }

    /// <summary>The monitor could not write one of its own files (heartbeat, audit log, metrics, outbox); it goes on.</summary>
    public sealed class WriteFailed : MonitorEvent
    {
        public WriteFailed(string target, string what, string path, string code, string error)
            : base(target, $"The monitor could not write its {what} '{path}': {code}: {error}")
        {
            What = what;
            Path = path;
            Code = code;
        }

        public string What { get; }
        public string Path { get; }
        public string Code { get; }

        protected override void WriteFields(Utf8JsonWriter w)
        {
            w.WriteString("what", What);
            w.WriteString("path", Path);
            w.WriteString("code", Code);
        }
    }

    public sealed class OutboxReplayed : MonitorEvent
    {
        public OutboxReplayed(string target, BmadGuard.Core.Outbox.OutboxReplayResult result)
            : base(target, $"Replayed {result.Published} spooled event(s) into the store ({result.AlreadyInStore} were already there); {result.Pending} still pending.")
        {
            Published = result.Published;
            AlreadyInStore = result.AlreadyInStore;
            Pending = result.Pending;
        }

        public int Published { get; }
        public int AlreadyInStore { get; }
        public int Pending { get; }

        protected override void WriteFields(Utf8JsonWriter w)
        {
            w.WriteNumber("published", Published);
            w.WriteNumber("alreadyInStore", AlreadyInStore);
            w.WriteNumber("pending", Pending);
        }
    }

    /// <summary>
    /// An <see cref="IObserver{T}"/> that queues events so one thread can consume them in order — what a cmdlet
    /// needs: run the monitor on a task, enumerate <see cref="GetConsumingEnumerable"/> on the pipeline thread.
    /// </summary>
    public sealed class MonitorEventQueue : IObserver<MonitorEvent>, IDisposable
    {
        private readonly BlockingCollection<MonitorEvent> _queue = new BlockingCollection<MonitorEvent>(10_000);

        public void OnNext(MonitorEvent value) => _queue.TryAdd(value);

        public void OnError(Exception error) => _queue.CompleteAdding();

        public void OnCompleted() => _queue.CompleteAdding();

        public IEnumerable<MonitorEvent> GetConsumingEnumerable(CancellationToken cancellationToken)
        {
            using var e = _queue.GetConsumingEnumerable(cancellationToken).GetEnumerator();
            while (true)
            {
                bool more;
                try
                {
                    more = e.MoveNext();
                }
                catch (OperationCanceledException)
                {
                    yield break;
                }

                if (!more)
                {
                    yield break;
                }

                yield return e.Current;
            }
        }

        public void Dispose() => _queue.Dispose();
    }
}
