using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using BmadGuard.Core.Alerts;
using BmadGuard.Core.Health;
using BmadGuard.Core.Outbox;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>
    /// The pluggable parts of the monitor. The defaults are the real features (BmadGuard.Core.Integration):
    /// Test-BmadIntegrity as the deep check, Repair-BmadStore/Restore-BmadStore as the healer, Backup-BmadStore
    /// with retention as the backup taker. <see cref="StoreMonitor"/> without hooks picks them per its configuration
    /// (<see cref="Integration.DefaultHooks.For"/>).
    /// </summary>
    public sealed class MonitorHooks
    {
        public IStoreInspector Inspector { get; set; } = new Integration.VerifierInspector();
        public IStoreHealer Healer { get; set; } = new Integration.BackupHealer();
        public IBackupTaker Backups { get; set; } = new Integration.StoreBackupTaker(Integration.DefaultHooks.DefaultRetention);

        /// <summary>Verifies the store's backups on the deep schedule (damaged backups are alerted, never "healed"); null for none.</summary>
        public IBackupInspector? BackupInspector { get; set; } = new Integration.BackupWatch();

        /// <summary>Replaces the channels built from the configuration (tests, Send-BmadAlert with -Channel).</summary>
        public IReadOnlyList<IAlertChannel>? Channels { get; set; }
    }

    /// <summary>What one pass (<c>--once</c>) found and left.</summary>
    public sealed class MonitorPassSummary
    {
        public MonitorPassSummary(int targets, int damaged, int healed, int stillDamaged, long writeErrors = 0)
        {
            WriteErrors = writeErrors;
            Targets = targets;
            Damaged = damaged;
            Healed = healed;
            StillDamaged = stillDamaged;
        }

        public int Targets { get; }
        public int Damaged { get; }
        public int Healed { get; }
        public int StillDamaged { get; }
        public bool Healthy => StillDamaged == 0;

        /// <summary>Failures to write the monitor's own files (heartbeat, audit, metrics, outbox) during the pass.</summary>
        public long WriteErrors { get; }
    }

    /// <summary>
    /// The monitor: Start-BmadMonitor and <c>bmadguard monitor</c> are one call each into this class.
    /// <list type="bullet">
    /// <item>Detection: a FileSystemWatcher on each store's <c>segments/</c> and on each guarded file wakes the loop
    /// at once (debounced 50 ms, at most one check per target per 250 ms); besides, every <see cref="MonitorConfig.Interval"/>
    /// every target gets the cheap incremental check, and every <see cref="MonitorConfig.DeepInterval"/> a deep verify.</item>
    /// <item>Action by <see cref="DamagePolicy"/>: repair first where repair loses nothing; with Restore, restore when
    /// repair is not possible (a safety backup is asked for first); then check again. Healers take the writers' lock and
    /// quarantine, never delete. A heal that could not be done is not retried until the damage changes.</item>
    /// <item>Everything found and done goes to <c>&lt;store&gt;/audit.jsonl</c>, to the observer as typed events, and to the
    /// alert channels (de-duplicated, escalated, resolved).</item>
    /// <item>One monitor per store (<see cref="MonitorInstance"/>), heartbeat in <c>monitor.json</c>, metrics in
    /// <c>metrics.prom</c>/<c>metrics.json</c>, the outbox replayed once the store accepts.</item>
    /// </list>
    /// </summary>
    public sealed class StoreMonitor : IDisposable
    {
        private readonly MonitorConfig _config;
        private readonly MonitorHooks _hooks;
        private readonly IObserver<MonitorEvent>? _observer;
        private readonly object _emitGate = new object();
        private readonly AutoResetEvent _wake = new AutoResetEvent(false);
        private readonly List<StoreTarget> _stores = new List<StoreTarget>();
        private readonly List<FileTarget> _files = new List<FileTarget>();
        private readonly Redactor _redactor = new Redactor();
        private bool _started;
        private bool _stopped;
        private long _writeErrors; // failures to write the monitor's own files, all stores (ReportWriteError)
        private bool _once; // RunOnce: every step, the backup sweep included, finishes within the pass

        public StoreMonitor(MonitorConfig config, MonitorHooks? hooks = null, IObserver<MonitorEvent>? observer = null)
        {
            _config = config;
            _hooks = hooks ?? Integration.DefaultHooks.For(config);
            _observer = observer;
        }

        public DateTimeOffset Started { get; private set; }

        /// <summary>The redactor holding this monitor's secrets (to clean any text the caller shows).</summary>
        public Redactor Redactor => _redactor;

        private sealed class DamageState
        {
            public string? Signature;
            public Stopwatch? Since;
            public bool ActionTaken;

            /// <summary>When an action that failed (not "not possible": failed, e.g. the lock was busy) may be tried again.</summary>
            public TimeSpan? RetryAt;
        }

        private abstract class Target
        {
            public DamageState Damage = new DamageState();
            public volatile bool Dirty;
            public long LastCheckTicks;
            public FileSystemWatcher? Watcher;
        }

        private sealed class StoreTarget : Target
        {
            public string Root = "";

            /// <summary>The backup sweep in progress (it reads every backup byte: it runs beside the loop, not in it).</summary>
            public Task<BackupSweep>? Sweep;

            /// <summary>The scheduled deep verify in progress, beside the loop (see <see cref="IDetachedDeepVerifier"/>).</summary>
            public Task<IntegrityResult>? Deep;
            public StoreLock? InstanceLock;
            public AuditLog Audit = null!;
            public WriteFailed? LastWriteError;
            public MonitorMetrics Metrics = null!;
            public AlertDispatcher Alerts = null!;
            public EventOutbox Outbox = null!;
            public DateTimeOffset LastDeep;
            public DateTimeOffset LastBackup;
            public DateTimeOffset LastProbe;
            public bool BackupUnavailableNoted;
            public SeqWatch Seqs = null!;
            public Dictionary<string, BackupProblem> DamagedBackups = new Dictionary<string, BackupProblem>(StringComparer.Ordinal);
            public (DateTimeOffset Time, bool Deep, bool Ok, int Findings)? LastCheck;
            public (DateTimeOffset Time, string Action, string Target, string Outcome, string Message)? LastAction;
        }

        private sealed class FileTarget : Target
        {
            public GuardedFile File = null!;
            public StoreTarget Owner = null!;
        }

        // ------------------------------------------------------------------ lifetime

        /// <summary>Validates the configuration, claims each store (one monitor per store), starts watching.</summary>
        public void Start()
        {
            if (_started)
            {
                return;
            }

            _config.Validate();
            Started = DateTimeOffset.UtcNow;
            try
            {
                foreach (string root in _config.Stores.Distinct(StringComparer.Ordinal))
                {
                    if (!StorePaths.IsStore(root))
                    {
                        FileEventStore.Open(root).Dispose(); // throws its clear StoreNotFound
                    }

                    var st = new StoreTarget { Root = root, InstanceLock = MonitorInstance.Claim(root) };
                    st.Audit = new AuditLog(root, _redactor);
                    st.Audit.Failed = ex => ReportWriteError(st, "audit log", st.Audit.Path, ex);
                    st.Metrics = new MonitorMetrics(Started);
                    var channels = _hooks.Channels ?? AlertDispatcher.ChannelsFor(_config.Alerts, _redactor);
                    st.Alerts = new AlertDispatcher(_config.Alerts, channels, st.Audit, _redactor, Emit);
                    st.Outbox = new EventOutbox(root, _config.OutboxReserveBytes) { ReserveFloorBytes = _config.OutboxReserveFloorBytes };
                    st.LastDeep = st.LastBackup = st.LastProbe = Started;
                    st.Seqs = new SeqWatch(root, SeqWatermark.Load(root));
                    _stores.Add(st);
                    try
                    {
                        st.Outbox.Ensure();
                    }
                    catch (IOException ex)
                    {
                        ReportWriteError(st, "outbox", st.Outbox.Dir, ex);
                    }

                    st.Watcher = Watch(Path.Combine(root, StorePaths.SegmentsDirName), null, st);
                    st.Audit.Write("monitor.started", root, "ok",
                        $"Monitor started: interval {Durations.Format(_config.Interval)}, deep every {Durations.Format(_config.DeepInterval)}, on damage {_config.OnDamage.ToString().ToLowerInvariant()}, " +
                        $"{channels.Count} alert channel(s): {string.Join("; ", channels.Select(c => c.Name))}.");
                }

                foreach (string file in _config.Files.Distinct(StringComparer.Ordinal))
                {
                    var owner = _stores[0];
                    var ft = new FileTarget { File = new GuardedFile(file, owner.Root), Owner = owner };
                    ft.Watcher = Watch(Path.GetDirectoryName(ft.File.Path)!, Path.GetFileName(ft.File.Path), ft);
                    _files.Add(ft);
                }
            }
            catch
            {
                ReleaseAll();
                throw;
            }

            _started = true;
        }

        private FileSystemWatcher? Watch(string directory, string? filter, Target target)
        {
            if (!Directory.Exists(directory))
            {
                return null;
            }

            try
            {
                var w = new FileSystemWatcher(directory) { IncludeSubdirectories = false, NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size };
                if (filter != null)
                {
                    w.Filter = filter;
                }

                FileSystemEventHandler onChange = (_, __) =>
                {
                    target.Dirty = true;
                    _wake.Set();
                };
                w.Changed += onChange;
                w.Created += onChange;
                w.Deleted += onChange;
                w.Renamed += (_, __) =>
                {
                    target.Dirty = true;
                    _wake.Set();
                };
                w.Error += (_, __) =>
                {
                    target.Dirty = true; // buffer overflow: fall back to checking
                    _wake.Set();
                };
                w.EnableRaisingEvents = true;
                return w;
            }
            catch (Exception ex) when (ex is IOException || ex is ArgumentException || ex is PlatformNotSupportedException)
            {
                return null; // inotify limits reached: the periodic check still runs
            }
        }

        /// <summary>Runs until cancelled (Ctrl+C, SIGTERM). Starts first if needed; releases everything when it returns.</summary>
        public void Run(CancellationToken cancellationToken)
        {
            try
            {
                Start();
            }
            catch (Exception ex)
            {
                _observer?.OnError(ex); // a consumer waiting on the events must not wait forever
                throw;
            }

            try
            {
                Pass(forceDeep: true, cancellationToken); // a full check at start
                var next = Stopwatch.StartNew();
                while (!cancellationToken.IsCancellationRequested)
                {
                    var wait = _config.Interval - next.Elapsed;
                    if (wait > TimeSpan.Zero)
                    {
                        int signalled = WaitHandle.WaitAny(new[] { _wake, cancellationToken.WaitHandle }, wait);
                        if (signalled == 1)
                        {
                            break;
                        }

                        if (signalled == 0)
                        {
                            cancellationToken.WaitHandle.WaitOne(50); // let a burst of writes settle
                            CheckDirty(cancellationToken);
                            continue;
                        }
                    }

                    next.Restart();
                    Pass(forceDeep: false, cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
            finally
            {
                Stop();
                _observer?.OnCompleted();
            }
        }

        /// <summary>One deep pass over every target, acting on damage, then stop (<c>--once</c>).</summary>
        public MonitorPassSummary RunOnce(CancellationToken cancellationToken)
        {
            _once = true;
            Start();
            MonitorPassSummary summary;
            try
            {
                summary = Pass(forceDeep: true, cancellationToken);
            }
            finally
            {
                Stop();
            }

            // Stop wrote the last heartbeat, audit entry and metrics: their failures count too.
            return new MonitorPassSummary(summary.Targets, summary.Damaged, summary.Healed, summary.StillDamaged, Interlocked.Read(ref _writeErrors));
        }

        public void Stop()
        {
            if (!_started || _stopped)
            {
                return;
            }

            _stopped = true;
            foreach (var t in _stores.Cast<Target>().Concat(_files))
            {
                t.Watcher?.Dispose();
            }

            foreach (var st in _stores)
            {
                try
                {
                    st.Sweep?.Wait(TimeSpan.FromSeconds(5)); // a cancelled sweep stops at the next file; its result is not needed now
                    st.Deep?.Wait(TimeSpan.FromSeconds(5)); // likewise a deep verify, at the next segment
                }
                catch (AggregateException)
                {
                    // Cancelled or failed: nothing to report any more.
                }
            }

            foreach (var st in _stores)
            {
                st.Alerts.Dispose(); // delivers what is queued (bounded wait)
                st.Audit.Write("monitor.stopped", st.Root, "ok", $"Monitor stopped after {Durations.Format(TimeSpan.FromSeconds(Math.Round((DateTimeOffset.UtcNow - Started).TotalSeconds)))}.");
                WriteState(st);
                WriteMetrics(st); // what happened since the last pass (a heal between passes) is counted too
            }

            ReleaseAll();
        }

        private void ReleaseAll()
        {
            foreach (var st in _stores)
            {
                st.InstanceLock?.Dispose();
                st.InstanceLock = null;
            }
        }

        public void Dispose()
        {
            Stop();
            ReleaseAll();
            _wake.Dispose();
        }

        // ------------------------------------------------------------------ passes

        private void CheckDirty(CancellationToken ct)
        {
            long now = Stopwatch.GetTimestamp();
            long minGap = Stopwatch.Frequency / 4;
            foreach (var st in _stores)
            {
                if (st.Dirty && now - st.LastCheckTicks >= minGap)
                {
                    st.Dirty = false;
                    CheckStore(st, deep: false, ct);
                }
            }

            foreach (var ft in _files)
            {
                if (ft.Dirty && now - ft.LastCheckTicks >= minGap)
                {
                    ft.Dirty = false;
                    CheckFile(ft, ct);
                }
            }

            foreach (var st in _stores)
            {
                if (st.Sweep != null && st.Sweep.IsCompleted)
                {
                    Safely(st, st.Root, "backup verify", () => CollectBackupSweep(st, wait: false));
                }

                Safely(st, st.Root, "check", () => CollectDeepVerify(st, ct)); // when it has finished
            }

            if (_stores.Any(s => s.Dirty) || _files.Any(f => f.Dirty))
            {
                _wake.Set(); // throttled ones: come back for them
            }
        }

        private MonitorPassSummary Pass(bool forceDeep, CancellationToken ct)
        {
            int damaged = 0, healed = 0, still = 0;
            var now = DateTimeOffset.UtcNow;
            foreach (var st in _stores)
            {
                bool deep = forceDeep || now - st.LastDeep >= _config.DeepInterval;
                if (deep)
                {
                    st.LastDeep = now; // from the pass's start, so a deep pass comes every DeepInterval, not one interval later
                }

                // A scheduled deep verify reads every byte (seconds per GB): beside the loop when the inspector can, so
                // the quick checks keep their "interval plus a fraction of a second". The first pass and --once
                // verify in the pass itself.
                bool beside = deep && !forceDeep && !_once && _hooks.Inspector is IDetachedDeepVerifier;
                if (beside)
                {
                    StartDeepVerify(st, ct);
                }

                var (d, h, s) = Safely(st, st.Root, "check", () => CheckStore(st, deep && !beside, ct));
                var (dd, dh, ds) = Safely(st, st.Root, "check", () => CollectDeepVerify(st, ct)); // when it has finished
                damaged += d + dd;
                healed += h + dh;
                still += s + ds;
                if (deep)
                {
                    Safely(st, st.Root, "backup verify", () => StartBackupSweep(st, ct));
                }

                // --once waits for the sweep; the loop takes its result whenever it is ready.
                Safely(st, st.Root, "backup verify", () => CollectBackupSweep(st, wait: _once));
            }

            foreach (var ft in _files)
            {
                var (d, h, s) = Safely(ft.Owner, ft.File.Path, "check", () => CheckFile(ft, ct));
                damaged += d;
                healed += h;
                still += s;
            }

            foreach (var st in _stores)
            {
                Safely(st, st.Root, "backup", () => ScheduledBackup(st, ct));
                Safely(st, st.Root, "probe", () => ScheduledProbe(st, ct));
                Safely(st, st.Root, "outbox.replay", () => ReplayOutbox(st, ct));
                st.Metrics.AlertsSent = st.Alerts.Sent;
                st.Metrics.AlertsFailed = st.Alerts.Failed;
                WriteState(st);
                WriteMetrics(st);
            }

            return new MonitorPassSummary(_stores.Count + _files.Count, damaged, healed, still);
        }

        /// <summary>
        /// One target's trouble never stops the monitor: an unexpected failure is audited and raised as an alert,
        /// and the loop goes on (cancellation still ends it).
        /// </summary>
        private (int, int, int) Safely(StoreTarget st, string target, string what, Func<(int, int, int)> action)
        {
            try
            {
                return action();
            }
            catch (Exception ex) when (!(ex is OperationCanceledException) && !(ex is OutOfMemoryException))
            {
                string message = $"The monitor's {what} of '{target}' failed: {ex.GetType().Name}: {ex.Message}";
                st.Audit.Write("monitor.error", target, "failed", message);
                st.Alerts.Raise("error:" + what + ":" + target, AlertSeverity.Error, $"Monitor {what} failed for {target}", _redactor.Redact(message), target);
                return (0, 0, 0);
            }
        }

        private void Safely(StoreTarget st, string target, string what, Action action)
            => Safely(st, target, what, () =>
            {
                action();
                return (0, 0, 0);
            });

        private (int Damaged, int Healed, int Still) CheckStore(StoreTarget st, bool deep, CancellationToken ct)
        {
            st.LastCheckTicks = Stopwatch.GetTimestamp();
            IntegrityResult result;
            try
            {
                result = deep ? _hooks.Inspector.DeepVerify(st.Root, ct) : _hooks.Inspector.QuickCheck(st.Root, ct);
            }
            catch (Exception ex) when (ex is BmadGuardException || ex is IOException || ex is UnauthorizedAccessException)
            {
                result = new IntegrityResult(st.Root, deep, new[] { new IntegrityFinding(FindingKind.Unreadable, st.Root, null, $"The check could not run: {ex.Message}") }, 0, 0, TimeSpan.Zero);
            }

            result = WithSeqWatch(st, result, ct);
            st.Metrics.CheckRun(deep, result.Duration);
            st.LastCheck = (DateTimeOffset.UtcNow, deep, result.Ok, result.Findings.Count);
            Emit(new Checked(result));
            return Handle(st, st, result, ct, heal: () => HealStore(st, result, ct), recheck: () => WithSeqWatch(st, _hooks.Inspector.QuickCheck(st.Root, ct), ct));
        }

        /// <summary>
        /// Adds a <see cref="FindingKind.LogShrunk"/> finding when the log ends below the high-water mark under the same
        /// writer epoch; advances the mark when the store is healthy.
        /// </summary>
        private static IntegrityResult WithSeqWatch(StoreTarget st, IntegrityResult result, CancellationToken ct)
        {
            // A segment file that was there at the previous check and is gone now is judged by the mark, which knows
            // the writer epoch: a restore replaces the segments on purpose (new epoch, not damage); a deleted newest
            // segment under the same epoch is LogShrunk. A segment gone from the middle or the start of the log is still
            // reported by the structural checks (SeqGap, "starts at seq N").
            string segmentsDir = Path.Combine(st.Root, StorePaths.SegmentsDirName) + Path.DirectorySeparatorChar;
            var findings = result.Findings
                .Where(f => !(f.Kind == FindingKind.Missing && f.Path.StartsWith(segmentsDir, StringComparison.Ordinal) && !File.Exists(f.Path)))
                .ToList();
            // The mark is compared only with a store that otherwise looks healthy: damage (a damaged last record lowers
            // the last valid seq) is reported and healed by its own path, and the monitor's own heal resets the mark.
            var shrunk = findings.Count == 0 ? st.Seqs.Check(advance: true, ct) : null;
            if (shrunk != null)
            {
                findings.Add(shrunk);
            }

            return findings.Count == result.Findings.Count && shrunk == null
                ? result
                : new IntegrityResult(result.Target, result.Deep, findings, result.BytesChecked, result.RecordsChecked, result.Duration);
        }

        private (int Damaged, int Healed, int Still) CheckFile(FileTarget ft, CancellationToken ct)
        {
            ft.LastCheckTicks = Stopwatch.GetTimestamp();
            var result = ft.File.Check(ct);
            ft.Owner.Metrics.CheckRun(false, result.Duration);
            Emit(new Checked(result));
            return Handle(ft, ft.Owner, result, ct,
                heal: () =>
                {
                    var clock = Stopwatch.StartNew();
                    var r = ft.File.Restore(ct);
                    return ("restore", r, clock.Elapsed);
                },
                recheck: () => ft.File.Check(ct));
        }

        /// <summary>The same steps for a store and a guarded file: report, act by policy, verify, resolve.</summary>
        private (int Damaged, int Healed, int Still) Handle(Target t, StoreTarget st, IntegrityResult result, CancellationToken ct,
            Func<(string Action, HealResult Result, TimeSpan Duration)?> heal, Func<IntegrityResult> recheck)
        {
            string key = "damage:" + result.Target;
            if (result.Ok)
            {
                if (t.Damage.Signature != null)
                {
                    // Gone without us (someone repaired it, or a writer finished): say so.
                    var since = t.Damage.Since?.Elapsed ?? TimeSpan.Zero;
                    st.Audit.Write("damage.cleared", result.Target, "ok", "The damage is no longer detected.", since);
                    st.Alerts.Resolve(key, $"The damage on '{result.Target}' is no longer detected (after {Durations.Format(TimeSpan.FromMilliseconds(Math.Round(since.TotalMilliseconds)))}).");
                    t.Damage = new DamageState();
                }

                return (0, 0, 0);
            }

            string signature = string.Join("|", result.Findings.Select(f => f.Key + "@" + f.Offset));
            bool fresh = signature != t.Damage.Signature;
            if (fresh)
            {
                t.Damage.Signature = signature;
                t.Damage.Since ??= Stopwatch.StartNew();
                t.Damage.ActionTaken = false;
                st.Metrics.Damage();
                Emit(new DamageDetected(result, _config.OnDamage));
                st.Audit.Write("damage.detected", result.Target, "found", string.Join(" ", result.Findings.Select(f => f.Message)), result.Duration,
                    new Dictionary<string, object?> { ["deep"] = result.Deep, ["policy"] = _config.OnDamage, ["findings"] = result.Findings.Select(f => $"{f.Kind} {f.Path}{(f.Offset.HasValue ? " @" + f.Offset : "")}").ToList() });
            }

            string summary = string.Join(" ", result.Findings.Select(f => f.Message));
            st.Alerts.Raise(key, AlertSeverity.Error, $"Damage detected in {result.Target}", summary + $"\nPolicy: {_config.OnDamage.ToString().ToLowerInvariant()}.", result.Target);
            bool retryDue = t.Damage.RetryAt.HasValue && t.Damage.Since != null && t.Damage.Since.Elapsed >= t.Damage.RetryAt.Value;
            if (_config.OnDamage == DamagePolicy.Alert || (t.Damage.ActionTaken && !retryDue))
            {
                return (fresh ? 1 : 0, 0, 1);
            }

            t.Damage.ActionTaken = true;
            t.Damage.RetryAt = null;
            (string Action, HealResult Result, TimeSpan Duration)? done;
            try
            {
                done = heal();
            }
            catch (Exception ex) when (ex is BmadGuardException || ex is IOException || ex is UnauthorizedAccessException)
            {
                done = ("repair", new HealResult(HealOutcome.Failed, ex.Message), TimeSpan.Zero);
            }

            if (done == null)
            {
                return (fresh ? 1 : 0, 0, 1);
            }

            var (action, heal1, duration) = done.Value;
            IntegrityResult after;
            try
            {
                after = recheck();
            }
            catch (Exception ex) when (ex is BmadGuardException || ex is IOException)
            {
                after = new IntegrityResult(result.Target, false, new[] { new IntegrityFinding(FindingKind.Unreadable, result.Target, null, ex.Message) }, 0, 0, TimeSpan.Zero);
            }

            bool verified = after.Ok;
            var recovery = t.Damage.Since?.Elapsed ?? duration;
            st.Audit.Write(action, result.Target, heal1.Outcome.ToString() + (verified ? ", verified" : ", not verified"), heal1.Message, duration,
                new Dictionary<string, object?> { ["quarantined"] = heal1.Quarantined, ["bytesQuarantined"] = heal1.BytesQuarantined, ["restoredFrom"] = heal1.RestoredFrom, ["recoveryMs"] = recovery, ["verified"] = verified });
            Emit(action == "restore" ? new Restored(result.Target, heal1, verified, duration, recovery) : (MonitorEvent)new Repaired(result.Target, heal1, verified, duration, recovery));
            st.Metrics.Healed(result.Target, action, heal1.Success && verified, recovery);
            st.LastAction = (DateTimeOffset.UtcNow, action, result.Target, heal1.Outcome.ToString(), heal1.Message);
            if (verified)
            {
                st.Alerts.Resolve(key, $"{(action == "restore" ? "Restored" : "Repaired")} and verified in {recovery.TotalMilliseconds:0} ms: {heal1.Message}");
                t.Damage = new DamageState();
                return (fresh ? 1 : 0, 1, 0);
            }

            if (heal1.Outcome == HealOutcome.Failed)
            {
                // A failure may be transient (a writer held the lock for long): try again later, not every interval.
                var backoff = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(30).Ticks, _config.Interval.Ticks * 6));
                t.Damage.RetryAt = (t.Damage.Since?.Elapsed ?? TimeSpan.Zero) + backoff;
            }

            st.Alerts.Raise(key, AlertSeverity.Critical, $"Damage in {result.Target} was not healed",
                $"{summary}\n{action}: {heal1.Outcome}: {heal1.Message}", result.Target);
            return (fresh ? 1 : 0, 0, 1);
        }

        private (string, HealResult, TimeSpan)? HealStore(StoreTarget st, IntegrityResult damage, CancellationToken ct)
        {
            var done = HealStoreCore(st, damage, ct);
            if (done is { } d && d.Item2.Success)
            {
                st.Seqs.Reset(); // the monitor's own repair or restore changed the log on purpose: take a new mark
            }

            return done;
        }

        private (string, HealResult, TimeSpan)? HealStoreCore(StoreTarget st, IntegrityResult damage, CancellationToken ct)
        {
            var clock = Stopwatch.StartNew();
            var vanished = damage.Findings.Where(f => f.Kind == FindingKind.LogShrunk && f.LostFirst.HasValue).ToList();
            if (vanished.Count > 0)
            {
                // Nothing to repair (the log verifies, it is just shorter): bring the vanished seqs back from the newest
                // verified backup that holds them. StoreRestore makes the safety backup of the current state itself.
                long first = vanished.Min(f => f.LostFirst!.Value), last = vanished.Max(f => f.LostLast ?? f.LostFirst!.Value);
                if (!(_hooks.Healer is ILostEventsHealer lostHealer))
                {
                    return ("restore", new HealResult(HealOutcome.NotAvailable, $"This monitor's healer cannot bring back vanished seqs {first}..{last}; restore a backup by hand."), clock.Elapsed);
                }

                var safetyFirst = _hooks.Backups.TakeBackup(st.Root, "safety", ct);
                st.Audit.Write("backup.safety", st.Root, safetyFirst.Available ? (safetyFirst.Success ? "ok" : "failed") : "unavailable", safetyFirst.Message);
                if (safetyFirst.Available && !safetyFirst.Success)
                {
                    return ("restore", new HealResult(HealOutcome.Failed, $"Restore not attempted: the safety backup failed ({safetyFirst.Message})."), clock.Elapsed);
                }

                return ("restore", lostHealer.RestoreLost(st.Root, first, last, ct), clock.Elapsed);
            }

            // Repair first, under both policies: the healer repairs only what it can without losing records.
            // When that is not possible (damage inside the log), both policies restore from the latest verified
            // backup: Repair puts the events newer than the backup back (nothing lost), Restore leaves them in the
            // kept-aside file (see BackupHealer). A repair that failed for another reason is not followed by a restore.
            var repair = _hooks.Healer.Repair(st.Root, damage, ct);
            if (repair.Success || repair.Outcome != HealOutcome.NotPossible)
            {
                return ("repair", repair, clock.Elapsed);
            }

            st.Audit.Write("repair", st.Root, repair.Outcome.ToString(), repair.Message + $" Restoring from the latest verified backup instead (policy {_config.OnDamage.ToString().ToLowerInvariant()}).", clock.Elapsed);

            // Restore: a safety backup of the damaged state first, where backups exist.
            var safety = _hooks.Backups.TakeBackup(st.Root, "safety", ct);
            st.Audit.Write("backup.safety", st.Root, safety.Available ? (safety.Success ? "ok" : "failed") : "unavailable", safety.Message);
            if (safety.Available && !safety.Success)
            {
                return ("restore", new HealResult(HealOutcome.Failed, $"Restore not attempted: the safety backup of the damaged store failed ({safety.Message})."), clock.Elapsed);
            }

            return ("restore", _hooks.Healer.RestoreLatest(st.Root, ct), clock.Elapsed);
        }

        // ------------------------------------------------------------------ schedules

        /// <summary>
        /// The deep schedule's backup sweep: a backup that does not match its manifest is audited, counted and alerted
        /// (its own key, so de-duplication and escalation work per backup) and reported as <see cref="BackupDamaged"/>;
        /// one that verifies again or is gone is resolved. The store is never repaired or restored for it.
        /// </summary>
        private void StartBackupSweep(StoreTarget st, CancellationToken ct)
        {
            var inspector = _hooks.BackupInspector;
            if (inspector == null || st.Sweep != null)
            {
                return; // none configured, or the last one is still reading
            }

            // Verifying backups reads every byte of every backup that changed (or is due for a re-read): gigabytes on a
            // big store. On the loop it would hold up the quick checks and their "interval plus a fraction of a second".
            st.Sweep = Task.Run(() => inspector.Verify(st.Root, ct), ct);
            st.Sweep.ContinueWith(_ => SetWake(), TaskScheduler.Default); // report it without waiting for the next pass
        }

        private void WriteMetrics(StoreTarget st)
        {
            try
            {
                st.Metrics.WriteFiles(st.Root);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is BmadGuardException)
            {
                // Disk full (or a refused link): the metrics files keep their last contents until a later write
                // succeeds. Never silent: printed, counted, and in the heartbeat for --status and health.
                ReportWriteError(st, "metrics", Path.Combine(st.Root, MonitorMetrics.PromFileName), ex);
            }
        }

        /// <summary>
        /// One failure to write the monitor's own files (heartbeat, audit log, metrics, outbox): counted in the
        /// metrics and the heartbeat (<c>counters.writeErrors</c>, <c>lastWriteError</c>), which --status and the health
        /// report show, and emitted as <see cref="WriteFailed"/> (the CLI prints it on stderr). The monitor goes on.
        /// </summary>
        private void ReportWriteError(StoreTarget st, string what, string path, Exception ex)
        {
            st.Metrics.WriteFailed();
            Interlocked.Increment(ref _writeErrors);
            string code = ex is BmadGuardException b ? b.Code : StoreFs.IsDiskFull(ex) ? ErrorCodes.StoreFull : ErrorCodes.StoreIOError;
            var e = new WriteFailed(st.Root, what, path, code, _redactor.Redact(ex.Message));
            st.LastWriteError = e;
            Emit(e);
        }

        private void StartDeepVerify(StoreTarget st, CancellationToken ct)
        {
            if (st.Deep != null)
            {
                return; // the last one is still reading: this schedule's turn is taken by it
            }

            var verifier = (IDetachedDeepVerifier)_hooks.Inspector;
            st.Deep = Task.Run(() => verifier.DeepVerifyDetached(st.Root, ct), ct);
            st.Deep.ContinueWith(_ => SetWake(), TaskScheduler.Default); // act on it without waiting for the next pass
        }

        /// <summary>
        /// Takes a finished deep verify from beside the loop. Healthy: counted and reported like any check. Damage (or a
        /// verify that could not run): the store may have changed since it started (an append, a heal), so it is checked
        /// again here, deep, and that check is the one acted on.
        /// </summary>
        private (int, int, int) CollectDeepVerify(StoreTarget st, CancellationToken ct)
        {
            var task = st.Deep;
            if (task == null || !task.IsCompleted)
            {
                return (0, 0, 0);
            }

            st.Deep = null;
            IntegrityResult result;
            try
            {
                result = task.GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                return (0, 0, 0); // stopping
            }
            catch (Exception ex) when (ex is BmadGuardException || ex is IOException || ex is UnauthorizedAccessException)
            {
                return CheckStore(st, deep: true, ct);
            }

            if (!result.Ok)
            {
                return CheckStore(st, deep: true, ct);
            }

            st.Metrics.CheckRun(deep: true, result.Duration);
            st.LastCheck = (DateTimeOffset.UtcNow, true, true, 0);
            Emit(new Checked(result));
            return (0, 0, 0);
        }

        private void SetWake()
        {
            try
            {
                _wake.Set();
            }
            catch (ObjectDisposedException)
            {
                // The monitor was disposed while the sweep ran.
            }
        }

        private void CollectBackupSweep(StoreTarget st, bool wait)
        {
            var task = st.Sweep;
            if (task == null || (!wait && !task.IsCompleted))
            {
                return;
            }

            st.Sweep = null;
            BackupSweep sweep;
            try
            {
                sweep = task.GetAwaiter().GetResult(); // a failure surfaces here, on the loop, like any other step's
            }
            catch (OperationCanceledException)
            {
                return; // stopping
            }

            VerifyBackups(st, sweep);
        }

        private void VerifyBackups(StoreTarget st, BackupSweep sweep)
        {
            int fresh = 0;
            var now = new Dictionary<string, BackupProblem>(StringComparer.Ordinal);
            foreach (var p in sweep.Damaged)
            {
                now[p.Path] = p;
                string key = "backup-damaged:" + p.Path;
                string where = string.Join("\n", p.Findings.Select((f, i) => $"{p.Codes[i]} {f.Path}{(f.Offset.HasValue ? " at byte " + f.Offset.Value : "")}"));
                string text = string.Join(" ", p.Findings.Select(f => f.Message)) +
                              $"\nThe store was not touched: restore skips this backup and uses the newest one that verifies. Take a new backup (bmadguard backup) and remove or keep '{p.Path}' for inspection.";
                if (!st.DamagedBackups.TryGetValue(p.Path, out var before) || before.Signature != p.Signature)
                {
                    fresh++;
                    Emit(new BackupDamaged(st.Root, p));
                    st.Audit.Write("backup.damaged", p.Path, "found", string.Join(" ", p.Findings.Select(f => f.Message)), sweep.Duration,
                        new Dictionary<string, object?> { ["backup"] = p.Name, ["findings"] = p.Findings.Select((f, i) => $"{p.Codes[i]} {f.Path}{(f.Offset.HasValue ? " @" + f.Offset : "")}").ToList() });
                    st.LastAction = (DateTimeOffset.UtcNow, "backup.verify", p.Path, "damaged", $"Backup '{p.Name}' is damaged: {where}");
                }

                st.Alerts.Raise(key, AlertSeverity.Error, $"Backup '{p.Name}' of {st.Root} is damaged", where + "\n" + text, p.Path);
            }

            foreach (var old in st.DamagedBackups.Values.Where(o => !now.ContainsKey(o.Path)).ToList())
            {
                bool gone = !Directory.Exists(old.Path);
                Emit(new BackupDamageCleared(st.Root, old.Name, old.Path, gone));
                st.Audit.Write("backup.damage.cleared", old.Path, "ok", gone ? $"Backup '{old.Name}' is gone." : $"Backup '{old.Name}' verifies again.");
                st.Alerts.Resolve("backup-damaged:" + old.Path, gone ? $"Backup '{old.Name}' is gone." : $"Backup '{old.Name}' verifies against its manifest again.");
            }

            st.DamagedBackups = now;
            st.Metrics.BackupSweep(now.Count, fresh, sweep.BytesRead);
        }

        private void ScheduledBackup(StoreTarget st, CancellationToken ct)
        {
            if (!_config.BackupInterval.HasValue || DateTimeOffset.UtcNow - st.LastBackup < _config.BackupInterval.Value)
            {
                return;
            }

            st.LastBackup = DateTimeOffset.UtcNow;
            var clock = Stopwatch.StartNew();
            BackupResult r;
            try
            {
                r = _hooks.Backups.TakeBackup(st.Root, "scheduled", ct);
            }
            catch (Exception ex) when (ex is BmadGuardException || ex is IOException)
            {
                r = new BackupResult(true, false, ex.Message);
            }

            if (!r.Available)
            {
                if (!st.BackupUnavailableNoted)
                {
                    st.BackupUnavailableNoted = true;
                    st.Audit.Write("backup.scheduled", st.Root, "unavailable", r.Message, clock.Elapsed);
                    Emit(new BackupTaken(st.Root, r, clock.Elapsed));
                }

                return;
            }

            st.Metrics.Backup(r.Success);
            st.Audit.Write("backup.scheduled", st.Root, r.Success ? "ok" : "failed", r.Message, clock.Elapsed, new Dictionary<string, object?> { ["backup"] = r.Backup?.Name });
            st.LastAction = (DateTimeOffset.UtcNow, "backup", st.Root, r.Success ? "ok" : "failed", r.Message);
            Emit(new BackupTaken(st.Root, r, clock.Elapsed));
            if (r.Success)
            {
                st.Alerts.Resolve("backup:" + st.Root, "A scheduled backup succeeded again.");
            }
            else
            {
                st.Alerts.Raise("backup:" + st.Root, AlertSeverity.Warning, $"Scheduled backup of {st.Root} failed", r.Message, st.Root);
            }
        }

        private void ScheduledProbe(StoreTarget st, CancellationToken ct)
        {
            if (_config.ProbeInterval == TimeSpan.Zero || DateTimeOffset.UtcNow - st.LastProbe < _config.ProbeInterval || st.Damage.Signature != null)
            {
                return;
            }

            st.LastProbe = DateTimeOffset.UtcNow;
            var probe = HealthChecker.Probe(st.Root, ct);
            if (probe.PublishLatency.HasValue)
            {
                st.Metrics.Publish(probe.PublishLatency.Value);
            }

            if (probe.Check.Status == HealthStatus.Healthy)
            {
                st.Alerts.Resolve("probe:" + st.Root, "The round-trip probe works again.");
            }
            else
            {
                st.Audit.Write("probe", st.Root, probe.Check.Status.ToString(), probe.Check.Message);
                st.Alerts.Raise("probe:" + st.Root, AlertSeverity.Warning, $"Round-trip probe failed on {st.Root}", probe.Check.Message, st.Root);
            }
        }

        private void ReplayOutbox(StoreTarget st, CancellationToken ct)
        {
            // The reserve gives way first: when free space is under the floor it is truncated now, before
            // publishers run out (and grown back, within the floor, when there is room again).
            st.Outbox.EnsureReserve();
            try
            {
                if (!st.Outbox.HasPending())
                {
                    st.Metrics.OutboxPending = 0;
                    return;
                }

                if (st.Damage.Signature != null)
                {
                    st.Metrics.OutboxPending = st.Outbox.PendingCount();
                    return; // wait until the store is healthy again
                }

                var clock = Stopwatch.StartNew();
                using var store = FileEventStore.Open(st.Root, new StoreOpenOptions { LockTimeout = TimeSpan.FromSeconds(2) });
                var r = st.Outbox.Replay(store, ct);
                st.Metrics.Replayed(r.Published);
                st.Metrics.OutboxPending = r.Pending;
                if (r.Published + r.AlreadyInStore > 0)
                {
                    st.Audit.Write("outbox.replayed", st.Root, r.Pending == 0 ? "ok" : "partial",
                        $"Replayed {r.Published} spooled event(s) ({r.AlreadyInStore} already in the store); {r.Pending} pending.", clock.Elapsed,
                        new Dictionary<string, object?> { ["published"] = r.Published, ["alreadyInStore"] = r.AlreadyInStore, ["pending"] = r.Pending });
                    st.LastAction = (DateTimeOffset.UtcNow, "outbox.replay", st.Root, r.Pending == 0 ? "ok" : "partial", $"{r.Published} replayed");
                    Emit(new OutboxReplayed(st.Root, r));
                }
            }
            catch (BmadGuardException ex) when (ex.Kind == FailureKind.StoreProblem)
            {
                // The store is not accepting yet (lock busy, full, damaged): next interval.
            }
            catch (IOException)
            {
            }
        }

        // ------------------------------------------------------------------ state and events

        private void WriteState(StoreTarget st)
        {
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartObject();
                w.WriteString("store", st.Root);
                w.WriteNumber("pid", ProcessInfo.Pid);
                w.WriteString("by", AuditLog.By);
                w.WriteString("started", Started.ToString("o", CultureInfo.InvariantCulture));
                w.WriteString("heartbeat", DateTimeOffset.UtcNow.ToString("o", CultureInfo.InvariantCulture));
                w.WriteBoolean("running", !_stopped);
                w.WriteNumber("intervalMs", _config.Interval.TotalMilliseconds);
                w.WriteNumber("deepIntervalMs", _config.DeepInterval.TotalMilliseconds);
                w.WriteString("onDamage", _config.OnDamage.ToString().ToLowerInvariant());
                w.WriteStartArray("files");
                foreach (var f in _files.Where(f => f.Owner == st))
                {
                    w.WriteStringValue(f.File.Path);
                }

                w.WriteEndArray();
                if (st.LastCheck is { } lc)
                {
                    w.WriteStartObject("lastCheck");
                    w.WriteString("time", lc.Time.ToString("o", CultureInfo.InvariantCulture));
                    w.WriteBoolean("deep", lc.Deep);
                    w.WriteBoolean("ok", lc.Ok);
                    w.WriteNumber("findings", lc.Findings);
                    w.WriteEndObject();
                }

                if (st.LastAction is { } la)
                {
                    w.WriteStartObject("lastAction");
                    w.WriteString("time", la.Time.ToString("o", CultureInfo.InvariantCulture));
                    w.WriteString("action", la.Action);
                    w.WriteString("target", la.Target);
                    w.WriteString("outcome", la.Outcome);
                    w.WriteString("message", _redactor.Redact(la.Message));
                    w.WriteEndObject();
                }
                else
                {
                    w.WriteNull("lastAction");
                }

                var m = st.Metrics;
                w.WriteStartObject("counters");
                w.WriteNumber("checks", m.ChecksRun);
                w.WriteNumber("deepChecks", m.DeepChecksRun);
                w.WriteNumber("damageFound", m.DamageFound);
                w.WriteNumber("repairs", m.Repairs);
                w.WriteNumber("restores", m.Restores);
                w.WriteNumber("alertsSent", st.Alerts.Sent);
                w.WriteNumber("alertsFailed", st.Alerts.Failed);
                w.WriteNumber("alertsSuppressed", st.Alerts.Suppressed);
                w.WriteNumber("backups", m.BackupsAttempted);
                w.WriteNumber("outboxReplayed", m.OutboxReplayed);
                w.WriteNumber("backupsDamaged", m.BackupsDamaged);
                w.WriteNumber("writeErrors", m.WriteErrors);
                w.WriteEndObject();
                if (st.LastWriteError is { } lw)
                {
                    w.WriteStartObject("lastWriteError");
                    w.WriteString("time", lw.Time.ToString("o", CultureInfo.InvariantCulture));
                    w.WriteString("what", lw.What);
                    w.WriteString("path", lw.Path);
                    w.WriteString("code", lw.Code);
                    w.WriteString("message", lw.Message);
                    w.WriteEndObject();
                }
                w.WriteStartArray("damagedBackups");
                foreach (var b in st.DamagedBackups.Values)
                {
                    w.WriteStringValue(b.Path);
                }

                w.WriteEndArray();
                st.Seqs.Mark?.WriteJson(w, "highWater");
                w.WriteStartArray("openProblems");
                foreach (var p in st.Alerts.OpenProblems)
                {
                    w.WriteStringValue(p);
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            try
            {
                // Atomic replace: --status never reads half a heartbeat. (AtomicFile also fsyncs; losing the last
                // beat in a power cut would be harmless, but the recipe is shared and two fsyncs per interval are cheap.)
                AtomicFile.Write(StoreFs.Confine(st.Root, OsStorageIO.Instance), Path.Combine(st.Root, MonitorInstance.StateFileName), buffer.ToArray());
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is BmadGuardException)
            {
                // Disk full: the heartbeat goes stale, which --status and the health report show; the failure itself
                // is printed and counted (and lands in the next heartbeat that can be written).
                ReportWriteError(st, "heartbeat", Path.Combine(st.Root, MonitorInstance.StateFileName), ex);
            }
        }

        private void Emit(MonitorEvent e)
        {
            if (_observer == null)
            {
                return;
            }

            lock (_emitGate)
            {
                try
                {
                    _observer.OnNext(e);
                }
                catch (Exception)
                {
                    // A failing observer must not stop the monitor.
                }
            }
        }
    }
}
