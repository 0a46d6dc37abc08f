using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>
    /// What the monitor counts and measures. Written every interval as <c>&lt;store&gt;/metrics.prom</c> (Prometheus
    /// text exposition format, for node_exporter's textfile collector: atomic replace, so it never reads half a
    /// file) and <c>&lt;store&gt;/metrics.json</c>.
    /// </summary>
    public sealed class MonitorMetrics
    {
        public const string PromFileName = "metrics.prom";
        public const string JsonFileName = "metrics.json";
        private const int Window = 1024;

        private readonly object _gate = new object();
        private readonly Queue<double> _publishMs = new Queue<double>();
        private readonly Queue<double> _verifyMs = new Queue<double>();
        private readonly List<RecoveryRecord> _recoveries = new List<RecoveryRecord>();

        public MonitorMetrics(DateTimeOffset started) => Started = started;

        public DateTimeOffset Started { get; }
        public long ChecksRun { get; private set; }
        public long DeepChecksRun { get; private set; }
        public long DamageFound { get; private set; }
        public long Repairs { get; private set; }
        public long RepairsFailed { get; private set; }
        public long Restores { get; private set; }
        public long RestoresFailed { get; private set; }
        public long BackupsAttempted { get; private set; }
        public long BackupsSucceeded { get; private set; }
        public long AlertsSent { get; set; }
        public long AlertsFailed { get; set; }
        public long OutboxReplayed { get; private set; }
        public long OutboxPending { get; set; }

        /// <summary>Failures to write the monitor's own files: heartbeat, audit log, metrics, outbox.</summary>
        public long WriteErrors { get; private set; }

        /// <summary>Backups that do not match their manifest right now (the last backup sweep).</summary>
        public long BackupsDamaged { get; private set; }

        /// <summary>Damaged backups found (each backup counted again only when its damage changes).</summary>
        public long BackupDamageFound { get; private set; }

        public long BackupSweeps { get; private set; }

        /// <summary>Backup bytes read by the sweeps (unchanged, recently verified backups are not read again).</summary>
        public long BackupBytesVerified { get; private set; }

        public sealed class RecoveryRecord
        {
            public RecoveryRecord(string target, string action, bool success, TimeSpan recoveryTime, DateTimeOffset at)
            {
                Target = target;
                Action = action;
                Success = success;
                RecoveryTime = recoveryTime;
                At = at;
            }

            public string Target { get; }
            public string Action { get; }
            public bool Success { get; }
            public TimeSpan RecoveryTime { get; }
            public DateTimeOffset At { get; }
        }

        public IReadOnlyList<RecoveryRecord> Recoveries
        {
            get
            {
                lock (_gate)
                {
                    return _recoveries.ToList();
                }
            }
        }

        public void CheckRun(bool deep, TimeSpan duration)
        {
            lock (_gate)
            {
                ChecksRun++;
                if (deep)
                {
                    DeepChecksRun++;
                }

                Add(_verifyMs, duration.TotalMilliseconds);
            }
        }

        public void Damage() => Locked(() => DamageFound++);

        public void BackupSweep(int damagedNow, int newlyDamaged, long bytesRead) => Locked(() =>
        {
            BackupSweeps++;
            BackupsDamaged = damagedNow;
            BackupDamageFound += newlyDamaged;
            BackupBytesVerified += bytesRead;
        });

        public void Healed(string target, string action, bool success, TimeSpan recoveryTime)
        {
            lock (_gate)
            {
                if (action == "restore")
                {
                    if (success)
                    {
                        Restores++;
                    }
                    else
                    {
                        RestoresFailed++;
                    }
                }
                else if (success)
                {
                    Repairs++;
                }
                else
                {
                    RepairsFailed++;
                }

                _recoveries.Add(new RecoveryRecord(target, action, success, recoveryTime, DateTimeOffset.UtcNow));
                if (_recoveries.Count > 100)
                {
                    _recoveries.RemoveAt(0);
                }
            }
        }

        public void Backup(bool success) => Locked(() =>
        {
            BackupsAttempted++;
            if (success)
            {
                BackupsSucceeded++;
            }
        });

        public void Publish(TimeSpan latency) => Locked(() => Add(_publishMs, latency.TotalMilliseconds));

        public void Replayed(int count) => Locked(() => OutboxReplayed += count);

        public void WriteFailed() => Locked(() => WriteErrors++);

        private void Locked(Action a)
        {
            lock (_gate)
            {
                a();
            }
        }

        private static void Add(Queue<double> q, double v)
        {
            q.Enqueue(v);
            if (q.Count > Window)
            {
                q.Dequeue();
            }
        }

        /// <summary>Nearest-rank percentile of the recent samples; NaN with none.</summary>
        public static double Percentile(IEnumerable<double> samples, double p)
        {
            var sorted = samples.OrderBy(x => x).ToArray();
            if (sorted.Length == 0)
            {
                return double.NaN;
            }

            int rank = (int)Math.Ceiling(p / 100.0 * sorted.Length);
            return sorted[Math.Max(0, Math.Min(sorted.Length - 1, rank - 1))];
        }

        public string ToPrometheus(string store)
        {
            lock (_gate)
            {
                var sb = new StringBuilder();
                string label = "store=\"" + store.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n") + "\"";
                void Metric(string name, string type, string help, double value, string? extraLabels = null)
                {
                    sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
                    sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
                    sb.Append(name).Append('{').Append(label).Append(extraLabels ?? "").Append("} ").Append(Num(value)).Append('\n');
                }

                void Summary(string name, string help, Queue<double> samples)
                {
                    sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
                    sb.Append("# TYPE ").Append(name).Append(" summary\n");
                    foreach (var q in new[] { 0.5, 0.99 })
                    {
                        sb.Append(name).Append('{').Append(label).Append(",quantile=\"").Append(q.ToString(CultureInfo.InvariantCulture)).Append("\"} ")
                          .Append(Num(Percentile(samples, q * 100) / 1000.0)).Append('\n');
                    }

                    sb.Append(name).Append("_sum{").Append(label).Append("} ").Append(Num(samples.Sum() / 1000.0)).Append('\n');
                    sb.Append(name).Append("_count{").Append(label).Append("} ").Append(samples.Count.ToString(CultureInfo.InvariantCulture)).Append('\n');
                }

                Metric("bmadguard_monitor_uptime_seconds", "gauge", "Seconds since the monitor started.", (DateTimeOffset.UtcNow - Started).TotalSeconds);
                Metric("bmadguard_monitor_checks_total", "counter", "Integrity checks run (quick and deep).", ChecksRun);
                Metric("bmadguard_monitor_deep_checks_total", "counter", "Deep verifications run.", DeepChecksRun);
                Metric("bmadguard_monitor_damage_found_total", "counter", "Checks that found damage.", DamageFound);
                Metric("bmadguard_monitor_repairs_total", "counter", "Successful repairs.", Repairs);
                Metric("bmadguard_monitor_repairs_failed_total", "counter", "Repairs that were not possible or failed.", RepairsFailed);
                Metric("bmadguard_monitor_restores_total", "counter", "Successful restores.", Restores);
                Metric("bmadguard_monitor_restores_failed_total", "counter", "Restores that were not available or failed.", RestoresFailed);
                Metric("bmadguard_monitor_backups_total", "counter", "Backups attempted.", BackupsAttempted);
                Metric("bmadguard_monitor_backups_succeeded_total", "counter", "Backups that succeeded.", BackupsSucceeded);
                Metric("bmadguard_monitor_backup_success_ratio", "gauge", "Backups succeeded / attempted (NaN before the first).", BackupsAttempted == 0 ? double.NaN : (double)BackupsSucceeded / BackupsAttempted);
                Metric("bmadguard_monitor_alerts_sent_total", "counter", "Alert deliveries that succeeded.", AlertsSent);
                Metric("bmadguard_monitor_alerts_failed_total", "counter", "Alert deliveries that failed after retries.", AlertsFailed);
                Metric("bmadguard_monitor_outbox_replayed_total", "counter", "Spooled events replayed into the store.", OutboxReplayed);
                Metric("bmadguard_monitor_outbox_pending", "gauge", "Spooled events waiting for the store.", OutboxPending);
                Metric("bmadguard_monitor_write_errors_total", "counter", "Failures to write the monitor's own files (heartbeat, audit log, metrics, outbox).", WriteErrors);
                Metric("bmadguard_monitor_backups_damaged", "gauge", "Backups that do not match their manifest (last backup sweep).", BackupsDamaged);
                Metric("bmadguard_monitor_backup_damage_found_total", "counter", "Damaged backups found by the backup sweeps.", BackupDamageFound);
                Metric("bmadguard_monitor_backup_sweeps_total", "counter", "Backup sweeps run (on the deep schedule).", BackupSweeps);
                Metric("bmadguard_monitor_backup_verified_bytes_total", "counter", "Backup bytes read and checked against their manifests.", BackupBytesVerified);
                var last = _recoveries.LastOrDefault();
                Metric("bmadguard_monitor_last_recovery_seconds", "gauge", "Damage-detected to verified-healthy time of the last repair or restore (NaN before the first).", last == null ? double.NaN : last.RecoveryTime.TotalSeconds);
                Summary("bmadguard_monitor_publish_latency_seconds", "Round-trip probe publish latency (recent samples).", _publishMs);
                Summary("bmadguard_monitor_verify_latency_seconds", "Integrity check duration (recent samples).", _verifyMs);
                return sb.ToString();
            }
        }

        private static string Num(double v)
            => double.IsNaN(v) ? "NaN" : double.IsPositiveInfinity(v) ? "+Inf" : v.ToString("0.######", CultureInfo.InvariantCulture);

        public byte[] ToJson(string store)
        {
            lock (_gate)
            {
                var buffer = new MemoryStream();
                using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
                {
                    void Ms(string name, double v)
                    {
                        if (double.IsNaN(v))
                        {
                            w.WriteNull(name);
                        }
                        else
                        {
                            w.WriteNumber(name, Math.Round(v, 3));
                        }
                    }

                    w.WriteStartObject();
                    w.WriteString("store", store);
                    w.WriteString("started", Started.ToString("o", CultureInfo.InvariantCulture));
                    w.WriteNumber("uptimeSeconds", Math.Round((DateTimeOffset.UtcNow - Started).TotalSeconds, 3));
                    w.WriteNumber("checksRun", ChecksRun);
                    w.WriteNumber("deepChecksRun", DeepChecksRun);
                    w.WriteNumber("damageFound", DamageFound);
                    w.WriteNumber("repairs", Repairs);
                    w.WriteNumber("repairsFailed", RepairsFailed);
                    w.WriteNumber("restores", Restores);
                    w.WriteNumber("restoresFailed", RestoresFailed);
                    w.WriteNumber("backupsAttempted", BackupsAttempted);
                    w.WriteNumber("backupsSucceeded", BackupsSucceeded);
                    Ms("backupSuccessRate", BackupsAttempted == 0 ? double.NaN : (double)BackupsSucceeded / BackupsAttempted);
                    w.WriteNumber("alertsSent", AlertsSent);
                    w.WriteNumber("alertsFailed", AlertsFailed);
                    w.WriteNumber("outboxReplayed", OutboxReplayed);
                    w.WriteNumber("outboxPending", OutboxPending);
                    w.WriteNumber("writeErrors", WriteErrors);
                    w.WriteNumber("backupsDamaged", BackupsDamaged);
                    w.WriteNumber("backupDamageFound", BackupDamageFound);
                    w.WriteNumber("backupSweeps", BackupSweeps);
                    w.WriteNumber("backupBytesVerified", BackupBytesVerified);
                    Ms("publishLatencyP50Ms", Percentile(_publishMs, 50));
                    Ms("publishLatencyP99Ms", Percentile(_publishMs, 99));
                    Ms("verifyLatencyP50Ms", Percentile(_verifyMs, 50));
                    Ms("verifyLatencyP99Ms", Percentile(_verifyMs, 99));
                    w.WriteStartArray("recoveries");
                    foreach (var r in _recoveries)
                    {
                        w.WriteStartObject();
                        w.WriteString("target", r.Target);
                        w.WriteString("action", r.Action);
                        w.WriteBoolean("success", r.Success);
                        w.WriteNumber("recoveryMs", Math.Round(r.RecoveryTime.TotalMilliseconds, 3));
                        w.WriteString("at", r.At.ToString("o", CultureInfo.InvariantCulture));
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                    w.WriteEndObject();
                }

                buffer.WriteByte((byte)'\n');
                return buffer.ToArray();
            }
        }

        /// <summary>Atomically replaces metrics.prom and metrics.json (no fsync needed for durability, but AtomicFile gives a whole file or none).</summary>
        public void WriteFiles(string store)
        {
            var io = StoreFs.Confine(store, OsStorageIO.Instance);
            AtomicFile.Write(io, Path.Combine(store, PromFileName), Encoding.UTF8.GetBytes(ToPrometheus(store)));
            AtomicFile.Write(io, Path.Combine(store, JsonFileName), ToJson(store));
        }
    }
}
