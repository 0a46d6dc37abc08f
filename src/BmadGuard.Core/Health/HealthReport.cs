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
    /// Builds the health report, the one health model both front ends render (`bmadguard health` as JSON,
    /// Get-BmadHealth / Invoke-BmadHealthCheck as objects): integrity (quick check), newest verified backup against a
    /// limit, damaged backups in the catalog, the monitor (heartbeat and what it last did), a read-only probe of the
    /// write path, free disk space, quarantine, and the outbox. Each check is independent: one failing never hides
    /// the others.
    /// <para>
    /// A health check changes nothing it checks: it appends no event (consumers would receive it, and a damaged store
    /// would grow), takes no backup, moves no consumer. The probe proves the write path without the log: see
    /// <see cref="Probe"/>.
    /// </para>
    /// </summary>
    public static class HealthChecker
    {
        /// <summary>The reserved event type older versions published as their round-trip probe (no longer written).</summary>
        public const string ProbeType = "bmadguard.probe";

        /// <summary>The prefix of the probe's scratch directory inside the store (created 0700, removed at once).</summary>
        public const string ScratchPrefix = ".bmadguard-health-";

        public static HealthReport Run(string store, HealthSettings? settings = null, IStoreInspector? inspector = null, IBackupTaker? backups = null, bool probe = true, CancellationToken cancellationToken = default)
            => Run(store, settings, inspector, backups, probe, null, cancellationToken);

        /// <summary>As above, plus a <c>legacy-files</c> check of the monitor's guarded legacy files (<paramref name="legacyFiles"/>).</summary>
        public static HealthReport Run(string store, HealthSettings? settings, IStoreInspector? inspector, IBackupTaker? backups, bool probe, IReadOnlyList<string>? legacyFiles, CancellationToken cancellationToken = default)
        {
            settings ??= new HealthSettings();
            inspector ??= new Integration.VerifierInspector();
            backups ??= new Integration.StoreBackupTaker();
            store = Path.GetFullPath(store);
            var clock = Stopwatch.StartNew();
            var integrity = Guard("integrity", () => Integrity(store, inspector, cancellationToken));
            var checks = new List<HealthCheck>
            {
                integrity,
                Guard("backup", () => Backup(store, backups, settings)),
                Guard("backup-catalog", () => BackupCatalogCheck(store, cancellationToken)),
                Guard("monitor", () => Monitor(store, settings)),
            };
            if (probe)
            {
                checks.Add(Guard("probe", () => Probe(store, integrity.Status == HealthStatus.Healthy, cancellationToken).Check));
            }

            checks.Add(Guard("disk", () => Disk(store, settings)));
            checks.Add(Guard("quarantine", () => Quarantine(store)));
            checks.Add(Guard("setAside", () => SetAside(store, cancellationToken)));
            checks.Add(Guard("outbox", () => OutboxCheck(store)));
            if (legacyFiles != null && legacyFiles.Count > 0)
            {
                checks.Add(Guard("legacy-files", () => LegacyFilesCheck(legacyFiles)));
            }

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

        /// <summary>Backups that no longer match their manifest (quick check): a restore would refuse them.</summary>
        public static HealthCheck BackupCatalogCheck(string store, CancellationToken ct)
        {
            var all = BmadGuard.Core.Backup.BackupCatalog.List(store, null, BmadGuard.Core.Backup.BackupCheck.Quick, null, ct);
            var damaged = all.Where(b => b.State == BmadGuard.Core.Backup.BackupState.Damaged).Select(b => b.Name).ToList();
            var evidence = new Dictionary<string, object?> { ["backups"] = all.Count, ["damaged"] = damaged.Count, ["damagedNames"] = damaged };
            return damaged.Count == 0
                ? new HealthCheck("backup-catalog", HealthStatus.Healthy, $"{all.Count} backup(s), none damaged.", evidence)
                : new HealthCheck("backup-catalog", HealthStatus.Degraded, $"{damaged.Count} of {all.Count} backup(s) are damaged: {string.Join(", ", damaged)}.", evidence);
        }

        public static HealthCheck Monitor(string store) => Monitor(store, new HealthSettings());

        /// <summary>
        /// The monitor, reported once: alive (heartbeat fresh and lock held), with what it last did. A monitor that is
        /// not running is Degraded, unless the configuration says none is expected (<c>health.requireMonitor: false</c>,
        /// which Install-BmadGuard -NoMonitorTask writes): a monitor deliberately not installed is not degradation.
        /// </summary>
        public static HealthCheck Monitor(string store, HealthSettings settings)
        {
            var s = MonitorStatus.Read(store);
            var view = MonitorStatusView.From(s);
            var evidence = new Dictionary<string, object?>
            {
                ["alive"] = s.Alive,
                ["required"] = settings.RequireMonitor,
                ["lockHeld"] = s.LockHeld,
                ["pid"] = s.Pid,
                ["heartbeat"] = s.Heartbeat,
                ["heartbeatAgeSeconds"] = s.HeartbeatAge.HasValue ? Math.Round(s.HeartbeatAge.Value.TotalSeconds, 3) : (object?)null,
                ["writeErrors"] = s.WriteErrors,
                ["lastWriteError"] = s.LastWriteError,
                ["lastAction"] = view.LastAction,
                ["lastActionOutcome"] = view.LastActionOutcome,
            };
            if (s.Alive)
            {
                // A monitor that cannot write its heartbeat, audit log or metrics is not doing its job: degraded.
                return new HealthCheck("monitor", s.WriteErrors == 0 ? HealthStatus.Healthy : HealthStatus.Degraded, s.Summary, evidence);
            }

            return settings.RequireMonitor
                ? new HealthCheck("monitor", HealthStatus.Degraded, s.Summary, evidence)
                : new HealthCheck("monitor", HealthStatus.Healthy, s.Summary + " None is expected (health.requireMonitor is false).", evidence);
        }

        /// <summary>The probe, also used by the monitor for its write-latency metric.</summary>
        public sealed class ProbeResult
        {
            public ProbeResult(HealthCheck check, TimeSpan? publishLatency, TimeSpan? roundTrip)
            {
                Check = check;
                PublishLatency = publishLatency;
                RoundTrip = roundTrip;
            }

            public HealthCheck Check { get; }

            /// <summary>Writing and fsyncing the scratch file: what a publish's write and fsync cost on this file system.</summary>
            public TimeSpan? PublishLatency { get; }

            /// <summary>The whole probe: the writers' lock taken and released, and the scratch file written, fsynced and removed.</summary>
            public TimeSpan? RoundTrip { get; }
        }

        public static ProbeResult Probe(string store, CancellationToken ct) => Probe(store, true, ct);

        /// <summary>
        /// Proves the write path without touching the log: takes the writers' lock (as a publish would, released at
        /// once, so no writer waits longer than a publish makes it wait) and writes, fsyncs and removes a scratch file
        /// in a scratch directory created owner-only inside the store. It appends no event, changes no file of the
        /// store, and is skipped on a damaged store (the integrity check reports the damage; nothing is written next
        /// to it).
        /// </summary>
        public static ProbeResult Probe(string store, bool storeIntact, CancellationToken ct)
        {
            store = Path.GetFullPath(store);
            if (!storeIntact)
            {
                return new ProbeResult(new HealthCheck("probe", HealthStatus.Healthy, "Skipped: the integrity check found damage, and nothing is written to a damaged store.",
                    new Dictionary<string, object?> { ["skipped"] = true }), null, null);
            }

            var clock = Stopwatch.StartNew();
            string lockPath = Path.Combine(store, StorePaths.LockFileName);
            string scratch = Path.Combine(store, ScratchPrefix + ProcessInfo.Pid.ToString(CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N"));
            try
            {
                TimeSpan lockWait = TimeSpan.Zero;
                if (File.Exists(lockPath))
                {
                    // Taken and released without writing: the lock file's bytes (the writer epoch) are not touched.
                    using (StoreLock.Acquire(lockPath, TimeSpan.FromSeconds(5), ct))
                    {
                        lockWait = clock.Elapsed;
                    }
                }

                var io = OsStorageIO.Instance;
                var writeClock = Stopwatch.StartNew();
                io.CreateDirectory(scratch);
                string file = Path.Combine(scratch, "probe");
                byte[] bytes = System.Text.Encoding.ASCII.GetBytes("bmadguard health probe\n");
                using (var s = io.OpenForWrite(file, createNew: true))
                {
                    s.Write(bytes, 0, bytes.Length);
                    io.Sync(s);
                }

                var writeLatency = writeClock.Elapsed;
                File.Delete(file);
                Directory.Delete(scratch);
                var roundTrip = clock.Elapsed;
                var evidence = new Dictionary<string, object?>
                {
                    ["lockWaitMs"] = Math.Round(lockWait.TotalMilliseconds, 3),
                    ["writeFsyncMs"] = Math.Round(writeLatency.TotalMilliseconds, 3),
                    ["roundTripMs"] = Math.Round(roundTrip.TotalMilliseconds, 3),
                };
                return new ProbeResult(new HealthCheck("probe", HealthStatus.Healthy,
                    $"The writers' lock was taken and released, and a scratch file was written, fsynced and removed in {roundTrip.TotalMilliseconds:0.0} ms (no event written).", evidence),
                    writeLatency, roundTrip);
            }
            catch (Exception ex) when (ex is BmadGuardException || ex is IOException || ex is UnauthorizedAccessException)
            {
                TryRemove(scratch);
                var status = ex is BmadGuardException b && b.Code == ErrorCodes.LockTimeout ? HealthStatus.Degraded : HealthStatus.Unhealthy;
                return new ProbeResult(new HealthCheck("probe", status, $"The write-path probe failed: {ex.Message}",
                    new Dictionary<string, object?> { ["error"] = ex is BmadGuardException e ? e.Code : ex.GetType().Name, ["elapsedMs"] = Math.Round(clock.Elapsed.TotalMilliseconds, 3) }), null, null);
            }
        }

        private static void TryRemove(string scratch)
        {
            try
            {
                if (Directory.Exists(scratch))
                {
                    Directory.Delete(scratch, recursive: true); // only our own scratch file: nothing of the store
                }
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
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

        /// <summary>
        /// The guarded legacy bus files: degraded when a file's lock file is missing although BmadGuard wrote the file
        /// before (its writers delete their lock file, so the lock excludes no one). A stat per file: cheap.
        /// </summary>
        public static HealthCheck LegacyFilesCheck(IReadOnlyList<string> files)
        {
            var problems = new List<string>();
            foreach (string f in files)
            {
                string? evidence = Legacy.LegacyLocking.MissingLockEvidence(f);
                if (evidence != null)
                {
                    problems.Add(Legacy.LegacyLocking.Explain(f, evidence));
                }
            }

            var evidenceMap = new Dictionary<string, object?> { ["files"] = files.Count, ["lockFileDeleted"] = problems.Count };
            return problems.Count == 0
                ? new HealthCheck("legacy-files", HealthStatus.Healthy, $"{files.Count} guarded legacy file(s); their lock files are in place.", evidenceMap)
                : new HealthCheck("legacy-files", HealthStatus.Degraded, string.Join(" ", problems) + " Migrate the agents to the store, or make the bus keep its lock file.", evidenceMap);
        }
    }
}
