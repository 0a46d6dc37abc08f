using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Events;
using BmadGuard.Core.Monitoring;
using BmadGuard.Core.Outbox;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Health
{
    /// <summary>Ordered: the report's status is the worst of its checks. The CLI exit code is the value.</summary>
    public enum HealthStatus
    {
        Healthy = 0,
        Degraded = 1,
        Unhealthy = 2,
    }

    /// <summary>One check with its evidence (numbers and paths a person can verify).</summary>
    public sealed class HealthCheck
    {
        public HealthCheck(string name, HealthStatus status, string message, IReadOnlyDictionary<string, object?>? evidence = null)
        {
            Name = name;
            Status = status;
            Message = message;
            Evidence = evidence ?? new Dictionary<string, object?>();
        }

        public string Name { get; }
        public HealthStatus Status { get; }
        public string Message { get; }
        public IReadOnlyDictionary<string, object?> Evidence { get; }
    }

    public sealed class HealthReport
    {
        public HealthReport(string store, IReadOnlyList<HealthCheck> checks, TimeSpan duration)
        {
            Store = store;
            Checks = checks;
            Duration = duration;
            Time = DateTimeOffset.UtcNow;
            Status = checks.Count == 0 ? HealthStatus.Healthy : checks.Max(c => c.Status);
        }

        public string Store { get; }
        public HealthStatus Status { get; }
        public IReadOnlyList<HealthCheck> Checks { get; }
        public TimeSpan Duration { get; }
        public DateTimeOffset Time { get; }

        public void WriteJson(Utf8JsonWriter w)
        {
            var redactor = new Alerts.Redactor();
            w.WriteStartObject();
            w.WriteString("store", Store);
            w.WriteString("status", Status.ToString());
            w.WriteString("time", Time.ToString("o", CultureInfo.InvariantCulture));
            w.WriteNumber("durationMs", Math.Round(Duration.TotalMilliseconds, 3));
            w.WriteStartArray("checks");
            foreach (var c in Checks)
            {
                w.WriteStartObject();
                w.WriteString("name", c.Name);
                w.WriteString("status", c.Status.ToString());
                w.WriteString("message", c.Message);
                w.WriteStartObject("evidence");
                foreach (var kv in c.Evidence)
                {
                    JsonValues.Write(w, kv.Key, kv.Value, redactor);
                }

                w.WriteEndObject();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }
    }

    /// <summary>
    /// Builds the health report: integrity (quick check), newest verified backup against a limit, monitor
    /// heartbeat, round-trip probe (publish <c>bmadguard.probe</c>, read it back), free disk space, quarantine,
    /// and the outbox. Each check is independent: one failing never hides the others.
    /// </summary>
    public static class HealthChecker
    {
        public const string ProbeType = "bmadguard.probe";

        public static HealthReport Run(string store, HealthSettings? settings = null, IStoreInspector? inspector = null, IBackupTaker? backups = null, bool probe = true, CancellationToken cancellationToken = default)
        {
            settings ??= new HealthSettings();
            inspector ??= new Integration.VerifierInspector();
            backups ??= new Integration.StoreBackupTaker();
            store = Path.GetFullPath(store);
            var clock = Stopwatch.StartNew();
            var checks = new List<HealthCheck>
            {
                Guard("integrity", () => Integrity(store, inspector, cancellationToken)),
                Guard("backup", () => Backup(store, backups, settings)),
                Guard("monitor", () => Monitor(store)),
            };
            if (probe)
            {
                checks.Add(Guard("probe", () => Probe(store, cancellationToken).Check));
            }

            checks.Add(Guard("disk", () => Disk(store, settings)));
            checks.Add(Guard("quarantine", () => Quarantine(store)));
            checks.Add(Guard("setAside", () => SetAside(store, cancellationToken)));
            checks.Add(Guard("outbox", () => OutboxCheck(store)));
            return new HealthReport(store, checks, clock.Elapsed);
        }

        private static HealthCheck Guard(string name, Func<HealthCheck> check)
        {
            try
            {
                return check();
            }
            catch (Exception ex) when (ex is BmadGuardException || ex is IOException || ex is UnauthorizedAccessException || ex is InvalidOperationException)
            {
                return new HealthCheck(name, HealthStatus.Unhealthy, $"The check could not run: {ex.Message}",
                    new Dictionary<string, object?> { ["error"] = ex is BmadGuardException b ? b.Code : ex.GetType().Name });
            }
        }

        public static HealthCheck Integrity(string store, IStoreInspector inspector, CancellationToken ct)
        {
            var r = inspector.QuickCheck(store, ct);
            var evidence = new Dictionary<string, object?>
            {
                ["bytesChecked"] = r.BytesChecked,
                ["recordsChecked"] = r.RecordsChecked,
                ["durationMs"] = Math.Round(r.Duration.TotalMilliseconds, 3),
                ["findings"] = r.Findings.Select(f => $"{f.Kind} {f.Path}{(f.Offset.HasValue ? " @" + f.Offset : "")}").ToList(),
            };
            return r.Ok
                ? new HealthCheck("integrity", HealthStatus.Healthy, $"{r.RecordsChecked} records in {r.BytesChecked} bytes checked; no damage.", evidence)
                : new HealthCheck("integrity", HealthStatus.Unhealthy, string.Join(" ", r.Findings.Select(f => f.Message)), evidence);
        }

        public static HealthCheck Backup(string store, IBackupTaker backups, HealthSettings settings)
        {
            var newest = backups.NewestVerified(store);
            if (newest == null)
            {
                return new HealthCheck("backup", HealthStatus.Degraded, "No verified backup exists.",
                    new Dictionary<string, object?> { ["newest"] = null, ["maxAgeHours"] = settings.MaxBackupAge.TotalHours });
            }

            var age = DateTimeOffset.UtcNow - newest.Created;
            var evidence = new Dictionary<string, object?>
            {
                ["newest"] = newest.Name,
                ["created"] = newest.Created,
                ["ageHours"] = Math.Round(age.TotalHours, 3),
                ["maxAgeHours"] = settings.MaxBackupAge.TotalHours,
            };
            return age <= settings.MaxBackupAge
                ? new HealthCheck("backup", HealthStatus.Healthy, $"Newest verified backup '{newest.Name}' is {age.TotalHours:0.0} h old.", evidence)
                : new HealthCheck("backup", HealthStatus.Degraded, $"Newest verified backup '{newest.Name}' is {age.TotalHours:0.0} h old, over the limit of {settings.MaxBackupAge.TotalHours:0.#} h.", evidence);
        }

        public static HealthCheck Monitor(string store)
        {
            var s = MonitorStatus.Read(store);
            var evidence = new Dictionary<string, object?>
            {
                ["alive"] = s.Alive,
                ["lockHeld"] = s.LockHeld,
                ["pid"] = s.Pid,
                ["heartbeat"] = s.Heartbeat,
                ["heartbeatAgeSeconds"] = s.HeartbeatAge.HasValue ? Math.Round(s.HeartbeatAge.Value.TotalSeconds, 3) : (object?)null,
            };
            return new HealthCheck("monitor", s.Alive ? HealthStatus.Healthy : HealthStatus.Degraded, s.Summary, evidence);
        }

        /// <summary>The round trip, also used by the monitor for its publish-latency metric.</summary>
        public sealed class ProbeResult
        {
            public ProbeResult(HealthCheck check, TimeSpan? publishLatency, TimeSpan? roundTrip)
            {
                Check = check;
                PublishLatency = publishLatency;
                RoundTrip = roundTrip;
            }

            public HealthCheck Check { get; }
            public TimeSpan? PublishLatency { get; }
            public TimeSpan? RoundTrip { get; }
        }

        /// <summary>Publishes a <c>bmadguard.probe</c> event (reserved type) and reads it back by seq, comparing ids.</summary>
        public static ProbeResult Probe(string store, CancellationToken ct)
        {
            string id = "probe-" + Guid.NewGuid().ToString("N");
            var clock = Stopwatch.StartNew();
            try
            {
                using var s = FileEventStore.Open(store, new StoreOpenOptions { LockTimeout = TimeSpan.FromSeconds(5) });
                var draft = EventDraft.FromObject(ProbeType, "bmadguard-health", null, new Dictionary<string, object?> { ["host"] = Environment.MachineName, ["pid"] = ProcessInfo.Pid });
                var published = s.PublishWithIds(new[] { (draft, (string?)id) }, allowReserved: true, null, ct)[0];
                var publishLatency = clock.Elapsed;
                EventRecord? back = s.Read(new EventQuery { After = published.Seq - 1, Type = ProbeType }, ct).FirstOrDefault();
                var roundTrip = clock.Elapsed;
                var evidence = new Dictionary<string, object?>
                {
                    ["seq"] = published.Seq,
                    ["id"] = id,
                    ["publishMs"] = Math.Round(publishLatency.TotalMilliseconds, 3),
                    ["roundTripMs"] = Math.Round(roundTrip.TotalMilliseconds, 3),
                };
                if (back == null || back.Id != id)
                {
                    return new ProbeResult(new HealthCheck("probe", HealthStatus.Unhealthy, $"The probe event (seq {published.Seq}) was acknowledged but could not be read back.", evidence), publishLatency, null);
                }

                return new ProbeResult(new HealthCheck("probe", HealthStatus.Healthy, $"Published and read back a probe event (seq {published.Seq}) in {roundTrip.TotalMilliseconds:0.0} ms.", evidence), publishLatency, roundTrip);
            }
            catch (BmadGuardException ex)
            {
                var status = ex.Code == ErrorCodes.LockTimeout ? HealthStatus.Degraded : HealthStatus.Unhealthy;
                return new ProbeResult(new HealthCheck("probe", status, $"The round-trip probe failed: {ex.Message}",
                    new Dictionary<string, object?> { ["error"] = ex.Code, ["elapsedMs"] = Math.Round(clock.Elapsed.TotalMilliseconds, 3) }), null, null);
            }
        }

        public static HealthCheck Disk(string store, HealthSettings settings)
        {
            long free = FreeBytes(store);
            var evidence = new Dictionary<string, object?> { ["freeBytes"] = free, ["minFreeBytes"] = settings.MinFreeBytes, ["criticalFreeBytes"] = settings.CriticalFreeBytes };
            if (free < settings.CriticalFreeBytes)
            {
                return new HealthCheck("disk", HealthStatus.Unhealthy, $"Only {free} bytes free where the store lives (critical below {settings.CriticalFreeBytes}).", evidence);
            }

            if (free < settings.MinFreeBytes)
            {
                return new HealthCheck("disk", HealthStatus.Degraded, $"Only {free} bytes free where the store lives (warning below {settings.MinFreeBytes}).", evidence);
            }

            return new HealthCheck("disk", HealthStatus.Healthy, $"{free} bytes free.", evidence);
        }

        public static long FreeBytes(string path)
        {
            // DriveInfo on Unix calls statvfs on the path given, so this is the file system the store is on.
            return new DriveInfo(path).AvailableFreeSpace;
        }

        public static HealthCheck Quarantine(string store)
        {
            string dir = Path.Combine(store, StorePaths.QuarantineDirName);
            var files = Directory.Exists(dir) ? new DirectoryInfo(dir).GetFiles().OrderByDescending(f => f.LastWriteTimeUtc).ToList() : new List<FileInfo>();
            var evidence = new Dictionary<string, object?>
            {
                ["directory"] = dir,
                ["files"] = files.Count,
                ["bytes"] = files.Sum(f => f.Length),
                ["newest"] = files.Take(5).Select(f => f.Name).ToList(),
            };
            return files.Count == 0
                ? new HealthCheck("quarantine", HealthStatus.Healthy, "The quarantine is empty.", evidence)
                : new HealthCheck("quarantine", HealthStatus.Degraded, $"The quarantine holds {files.Count} file(s) of damaged or cut bytes: look at them, then move them away once understood.", evidence);
        }

        /// <summary>Acknowledged events a restore set aside that the log does not hold (until put back or dismissed).</summary>
        public static HealthCheck SetAside(string store, CancellationToken ct)
        {
            var files = BmadGuard.Core.Backup.SetAsideEvents.List(store, ct).Where(f => f.Missing > 0).ToList();
            long missing = files.Sum(f => f.Missing);
            var evidence = new Dictionary<string, object?>
            {
                ["events"] = missing,
                ["files"] = files.Select(f => f.Name).ToList(),
            };
            return files.Count == 0
                ? new HealthCheck("setAside", HealthStatus.Healthy, "No acknowledged event is set aside outside the log.", evidence)
                : new HealthCheck("setAside", HealthStatus.Degraded, $"{missing} acknowledged event(s) are not in the log: a restore set them aside in {string.Join(", ", files.Select(f => f.Name))}. Put them back or dismiss them.", evidence);
        }

        public static HealthCheck OutboxCheck(string store)
        {
            var outbox = new EventOutbox(store, 0);
            int pending = outbox.PendingCount();
            var evidence = new Dictionary<string, object?> { ["pending"] = pending, ["directory"] = outbox.Dir };
            return pending == 0
                ? new HealthCheck("outbox", HealthStatus.Healthy, "No spooled events are waiting.", evidence)
                : new HealthCheck("outbox", HealthStatus.Degraded, $"{pending} spooled event(s) are waiting for the store; the monitor replays them once it accepts again.", evidence);
        }
    }
}
