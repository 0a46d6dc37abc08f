using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text.Json;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>
    /// One monitor per store: an OS lock on <c>&lt;store&gt;/monitor.lock</c> held for the monitor's lifetime
    /// (<see cref="StoreLock"/> semantics: the kernel drops it when the process dies, even with kill -9, so a
    /// leftover file never blocks a restart), plus the heartbeat <c>&lt;store&gt;/monitor.json</c>.
    /// </summary>
    public static class MonitorInstance
    {
        public const string LockFileName = "monitor.lock";
        public const string StateFileName = "monitor.json";

        /// <summary>How long a starting monitor waits for the lock: a status probe holds it for a moment.</summary>
        public static readonly TimeSpan StartLockWait = TimeSpan.FromSeconds(2);

        /// <summary>Takes the store's monitor lock, or throws MonitorAlreadyRunning naming the holder.</summary>
        public static StoreLock Claim(string store)
        {
            string lockPath = Path.Combine(store, LockFileName);
            try
            {
                return StoreLock.Acquire(lockPath, StartLockWait);
            }
            catch (BmadGuardException ex) when (ex.Code == ErrorCodes.LockTimeout)
            {
                var status = MonitorStatus.Read(store, probeLock: false);
                string who = status.Pid.HasValue
                    ? $" ({status.By}, running since {status.Started?.ToString("o", CultureInfo.InvariantCulture)})"
                    : "";
                throw new BmadGuardException(ErrorCodes.MonitorAlreadyRunning, FailureKind.StoreProblem,
                    $"A monitor is already running for the store '{store}'{who}. Only one monitor runs per store.",
                    lockPath);
            }
        }
    }

    /// <summary>What <c>bmadguard monitor --status</c> and Get-BmadMonitor show.</summary>
    public sealed class MonitorStatus
    {
        private MonitorStatus()
        {
        }

        public string Store { get; private set; } = "";

        /// <summary>Heartbeat fresh AND monitor lock held.</summary>
        public bool Alive { get; private set; }
        public bool LockHeld { get; private set; }
        public bool HeartbeatFresh { get; private set; }
        public int? Pid { get; private set; }
        public string? By { get; private set; }
        public DateTimeOffset? Started { get; private set; }
        public DateTimeOffset? Heartbeat { get; private set; }
        public TimeSpan? HeartbeatAge { get; private set; }

        /// <summary>The whole state file as written by the monitor (last check, last action, counters), or null.</summary>
        public JsonElement? State { get; private set; }

        public string Summary { get; private set; } = "";

        /// <summary>Failures of the monitor to write its own files (heartbeat, audit log, metrics, outbox), as of its last heartbeat.</summary>
        public long WriteErrors { get; private set; }

        /// <summary>The last such failure, as a sentence, or null.</summary>
        public string? LastWriteError { get; private set; }

        /// <summary>Reads monitor.json and probes the lock (a zero-wait try: if we can take it, nobody holds it).</summary>
        public static MonitorStatus Read(string store, bool probeLock = true)
        {
            store = Path.GetFullPath(store);
            var s = new MonitorStatus { Store = store };
            string statePath = Path.Combine(store, MonitorInstance.StateFileName);
            TimeSpan interval = TimeSpan.FromSeconds(5);
            if (File.Exists(statePath))
            {
                try
                {
                    using var doc = JsonDocument.Parse(File.ReadAllBytes(statePath));
                    var root = doc.RootElement;
                    s.State = root.Clone();
                    if (root.TryGetProperty("pid", out var pid))
                    {
                        s.Pid = pid.GetInt32();
                    }

                    if (root.TryGetProperty("by", out var by))
                    {
                        s.By = by.GetString();
                    }

                    if (root.TryGetProperty("started", out var st))
                    {
                        s.Started = DateTimeOffset.Parse(st.GetString()!, CultureInfo.InvariantCulture);
                    }

                    if (root.TryGetProperty("heartbeat", out var hb))
                    {
                        s.Heartbeat = DateTimeOffset.Parse(hb.GetString()!, CultureInfo.InvariantCulture);
                    }

                    if (root.TryGetProperty("intervalMs", out var iv))
                    {
                        interval = TimeSpan.FromMilliseconds(iv.GetDouble());
                    }

                    if (root.TryGetProperty("counters", out var counters) && counters.ValueKind == JsonValueKind.Object
                        && counters.TryGetProperty("writeErrors", out var we) && we.ValueKind == JsonValueKind.Number)
                    {
                        s.WriteErrors = we.GetInt64();
                    }

                    if (root.TryGetProperty("lastWriteError", out var lw) && lw.ValueKind == JsonValueKind.Object)
                    {
                        string? Field(string n) => lw.TryGetProperty(n, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
                        s.LastWriteError = $"{Field("time")}: could not write its {Field("what")} '{Field("path")}': {Field("code")}: {Field("message")}";
                    }
                }
                catch (Exception ex) when (ex is JsonException || ex is FormatException || ex is InvalidOperationException || ex is IOException)
                {
                    s.Summary = $"The monitor state file '{statePath}' cannot be read: {ex.Message}";
                }
            }

            if (s.Heartbeat.HasValue)
            {
                s.HeartbeatAge = DateTimeOffset.UtcNow - s.Heartbeat.Value;
                s.HeartbeatFresh = s.HeartbeatAge.Value <= FreshFor(interval);
            }

            if (probeLock)
            {
                s.LockHeld = IsLockHeld(Path.Combine(store, MonitorInstance.LockFileName));
            }

            s.Alive = s.LockHeld && s.HeartbeatFresh;
            if (s.Summary.Length == 0)
            {
                s.Summary = s.Alive
                    ? $"A monitor is running (pid {s.Pid}, since {s.Started?.ToString("o", CultureInfo.InvariantCulture)}); last heartbeat {s.HeartbeatAge?.TotalSeconds:0.0} s ago."
                    : s.LockHeld
                        ? $"A process holds the monitor lock but its heartbeat is {(s.Heartbeat.HasValue ? $"{s.HeartbeatAge?.TotalSeconds:0.0} s old" : "missing")}: it may be hung."
                        : s.Heartbeat.HasValue
                            ? $"No monitor is running (the last one, pid {s.Pid}, last beat at {s.Heartbeat?.ToString("o", CultureInfo.InvariantCulture)})."
                            : "No monitor has run on this store.";
            }

            if (s.WriteErrors > 0)
            {
                s.Summary += $" The monitor failed {s.WriteErrors} time(s) to write its own files (heartbeat, audit log, metrics); last: {s.LastWriteError}";
            }

            return s;
        }

        /// <summary>A heartbeat is fresh for three intervals plus two seconds (a deep check may delay one beat).</summary>
        public static TimeSpan FreshFor(TimeSpan interval) => TimeSpan.FromTicks(interval.Ticks * 3) + TimeSpan.FromSeconds(2);

        private static bool IsLockHeld(string lockPath)
        {
            if (!File.Exists(lockPath))
            {
                return false;
            }

            try
            {
                using (StoreLock.Acquire(lockPath, TimeSpan.Zero))
                {
                    return false;
                }
            }
            catch (BmadGuardException ex) when (ex.Code == ErrorCodes.LockTimeout)
            {
                return true;
            }
        }

        public void WriteJson(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteString("store", Store);
            w.WriteBoolean("alive", Alive);
            w.WriteBoolean("lockHeld", LockHeld);
            w.WriteBoolean("heartbeatFresh", HeartbeatFresh);
            if (Pid.HasValue)
            {
                w.WriteNumber("pid", Pid.Value);
            }
            else
            {
                w.WriteNull("pid");
            }

            w.WriteString("by", By);
            w.WriteString("started", Started?.ToString("o", CultureInfo.InvariantCulture));
            w.WriteString("heartbeat", Heartbeat?.ToString("o", CultureInfo.InvariantCulture));
            if (HeartbeatAge.HasValue)
            {
                w.WriteNumber("heartbeatAgeSeconds", Math.Round(HeartbeatAge.Value.TotalSeconds, 3));
            }

            w.WriteString("summary", Summary);
            w.WriteNumber("writeErrors", WriteErrors);
            w.WriteString("lastWriteError", LastWriteError);
            if (State.HasValue)
            {
                w.WritePropertyName("state");
                State.Value.WriteTo(w);
            }

            w.WriteEndObject();
        }
    }

    internal static class ProcessInfo
    {
        public static int Pid { get; } = Process.GetCurrentProcess().Id;
    }
}
