using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using BmadGuard.Core.Alerts;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>What the monitor does when it finds damage.</summary>
    public enum DamagePolicy
    {
        /// <summary>Report only: alert, audit, event. Nothing is touched.</summary>
        Alert,
        /// <summary>Repair where that loses nothing (a torn tail is cut to quarantine; a guarded file gets its last known-good copy back); otherwise restore the newest verified backup holding the lost seqs and append the events newer than it again (nothing lost); alert when no backup covers the loss.</summary>
        Repair,
        /// <summary>Repair where that loses nothing, else restore the latest verified backup (through <see cref="IStoreHealer"/>); events newer than it stay in the kept-aside file.</summary>
        Restore,
    }

    /// <summary>SMTP settings for the email channel. The password is a secret: it is never logged or shown.</summary>
    public sealed class SmtpSettings
    {
        public string Host { get; set; } = "";
        public int Port { get; set; } = 25;
        public bool EnableSsl { get; set; }
        public string From { get; set; } = "";
        public List<string> To { get; set; } = new List<string>();
        public string? Username { get; set; }
        public string? Password { get; set; }

        /// <summary>Name of an environment variable holding the password (keeps it out of the config file).</summary>
        public string? PasswordEnv { get; set; }

        public string? ResolvePassword() => Password ?? (string.IsNullOrEmpty(PasswordEnv) ? null : Environment.GetEnvironmentVariable(PasswordEnv!));
    }

    /// <summary>Alert channels and the rules for raising alerts.</summary>
    public sealed class AlertSettings
    {
        public string? SlackWebhook { get; set; }
        public string? Webhook { get; set; }
        public SmtpSettings? Smtp { get; set; }

        /// <summary>Identical alerts (same problem, same severity) inside this window are sent once.</summary>
        public TimeSpan DedupeWindow { get; set; } = TimeSpan.FromMinutes(10);

        /// <summary>A problem still there this long after it was first raised is raised again one level higher.</summary>
        public TimeSpan EscalateAfter { get; set; } = TimeSpan.FromMinutes(30);

        /// <summary>Alerts below this severity go to the audit log only.</summary>
        public AlertSeverity MinSeverity { get; set; } = AlertSeverity.Warning;

        /// <summary>Delivery attempts after the first one (exponential backoff from <see cref="RetryDelay"/>).</summary>
        public int Retries { get; set; } = 3;

        public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(500);

        /// <summary>Time limit of one delivery attempt.</summary>
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);
    }

    /// <summary>Limits the health report judges against.</summary>
    public sealed class HealthSettings
    {
        public TimeSpan MaxBackupAge { get; set; } = TimeSpan.FromHours(26);
        public long MinFreeBytes { get; set; } = 100L * 1024 * 1024;
        public long CriticalFreeBytes { get; set; } = 10L * 1024 * 1024;

        /// <summary>Whether a monitor not running degrades health (false when none was installed on purpose).</summary>
        public bool RequireMonitor { get; set; } = true;
    }

    /// <summary>
    /// The monitor's configuration: <c>&lt;store&gt;/bmadguard.monitor.json</c> (or <c>--config FILE</c>), then
    /// parameters on top. <see cref="Validate"/> runs before anything starts; every error is
    /// <see cref="ErrorCodes.InvalidConfiguration"/> (CLI exit 2) and never repeats a secret.
    /// <code>
    /// { "interval": "5s", "deepInterval": "10m", "onDamage": "repair", "backupInterval": "1h",
    ///   "backupKeep": { "last": 24, "daily": 7, "weekly": 4 },
    ///   "probeInterval": "15m", "backupReverify": "24h", "files": ["/srv/bmad/shared_context.json"],
    ///   "alerts": { "slackWebhook": "https://hooks.slack.com/services/…", "webhook": "https://…",
    ///               "smtp": { "host": "mail", "port": 25, "from": "bmad@x", "to": ["ops@x"], "username": "u", "passwordEnv": "SMTP_PASSWORD" },
    ///               "dedupeWindow": "10m", "escalateAfter": "30m", "minSeverity": "warning", "retries": 3, "retryDelay": "500ms", "timeout": "10s" },
    ///   "health": { "maxBackupAge": "26h", "minFreeBytes": 104857600, "requireMonitor": true },
    ///   "outbox": { "reserveBytes": 1048576, "reserveFloorBytes": 67108864 } }
    /// </code>
    /// </summary>
    public sealed class MonitorConfig
    {
        public const string FileName = "bmadguard.monitor.json";

        public List<string> Stores { get; set; } = new List<string>();
        public List<string> Files { get; set; } = new List<string>();
        public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(5);
        public TimeSpan DeepInterval { get; set; } = TimeSpan.FromMinutes(10);
        public DamagePolicy OnDamage { get; set; } = DamagePolicy.Repair;

        /// <summary>Scheduled backups through <see cref="IBackupTaker"/>; null for none.</summary>
        public TimeSpan? BackupInterval { get; set; }

        /// <summary>Retention applied after each scheduled backup (<c>"backupKeep": {"last","hourly","daily","weekly"}</c>); null for the default (last 24, daily 7).</summary>
        public BmadGuard.Core.Backup.RetentionPolicy? BackupRetention { get; set; }

        /// <summary>
        /// How long a backup that verified and has not changed since (same manifest, same file sizes and times) is trusted
        /// before the deep schedule reads it in full again (<c>"backupReverify"</c>, default 24h; 0s: on every deep pass).
        /// Changed and damaged backups are read on every deep pass.
        /// </summary>
        public TimeSpan BackupReverify { get; set; } = TimeSpan.FromHours(24);

        /// <summary>How often the monitor runs the write-path probe (HealthChecker.Probe: no event is written; its write+fsync time feeds the publish-latency metric); zero for never.</summary>
        public TimeSpan ProbeInterval { get; set; } = TimeSpan.FromMinutes(15);

        public AlertSettings Alerts { get; set; } = new AlertSettings();
        public HealthSettings Health { get; set; } = new HealthSettings();

        /// <summary>Bytes the outbox keeps in reserve so it can still spool when the disk is full.</summary>
        public long OutboxReserveBytes { get; set; } = 1024 * 1024;

        /// <summary>Free space the reserve never takes the disk below (see <see cref="Outbox.EventOutbox.ReserveFloorBytes"/>).</summary>
        public long OutboxReserveFloorBytes { get; set; } = Outbox.EventOutbox.DefaultReserveFloorBytes;

        /// <summary>Where the file came from, for messages.</summary>
        public string? LoadedFrom { get; private set; }

        /// <summary>Loads <paramref name="configPath"/>, or <c>&lt;store&gt;/bmadguard.monitor.json</c> when it exists, or defaults.</summary>
        /// <summary>
        /// Parameters given on the command line win over the configuration file: the Slack and generic webhook
        /// URLs (secrets, never echoed) when they are given. Null leaves the file's value.
        /// </summary>
        public void OverrideChannels(string? slackWebhook, string? webhook)
        {
            if (slackWebhook != null)
            {
                Alerts.SlackWebhook = slackWebhook;
            }

            if (webhook != null)
            {
                Alerts.Webhook = webhook;
            }
        }

        public static MonitorConfig Load(string store, string? configPath)
        {
            var config = new MonitorConfig();
            config.Stores.Add(Path.GetFullPath(store));
            string path = configPath ?? Path.Combine(store, FileName);
            if (configPath == null && !File.Exists(path))
            {
                return config;
            }

            if (!File.Exists(path))
            {
                throw Invalid($"The configuration file '{path}' does not exist.");
            }

            config.LoadedFrom = Path.GetFullPath(path);
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            }
            catch (JsonException ex)
            {
                // JsonException messages quote positions, not values, so no secret can leak here.
                throw Invalid($"The configuration file '{path}' is not valid JSON: line {ex.LineNumber + 1}: {ex.Message.Split('.')[0]}.");
            }

            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                {
                    throw Invalid($"The configuration file '{path}' must hold a JSON object.");
                }

                ApplyRoot(config, doc.RootElement, path);
            }

            return config;
        }

        private static void ApplyRoot(MonitorConfig c, JsonElement root, string path)
        {
            foreach (var p in root.EnumerateObject())
            {
                switch (p.Name)
                {
                    case "interval": c.Interval = Durations.Parse(Str(p), "interval"); break;
                    case "deepInterval": c.DeepInterval = Durations.Parse(Str(p), "deepInterval"); break;
                    case "onDamage": c.OnDamage = ParsePolicy(Str(p)); break;
                    case "backupInterval": c.BackupInterval = p.Value.ValueKind == JsonValueKind.Null ? (TimeSpan?)null : Durations.Parse(Str(p), "backupInterval"); break;
                    case "probeInterval": c.ProbeInterval = Durations.Parse(Str(p), "probeInterval"); break;
                    case "backupReverify": c.BackupReverify = Durations.Parse(Str(p), "backupReverify"); break;
                    case "backupKeep":
                        var keep = new BmadGuard.Core.Backup.RetentionPolicy();
                        foreach (var k in Obj(p, path))
                        {
                            int n = (int)Long(k);
                            if (n < 1)
                            {
                                throw Invalid($"'backupKeep.{k.Name}' in '{path}' must be 1 or more.");
                            }

                            switch (k.Name)
                            {
                                case "last": keep.KeepLast = n; break;
                                case "hourly": keep.KeepHourly = n; break;
                                case "daily": keep.KeepDaily = n; break;
                                case "weekly": keep.KeepWeekly = n; break;
                                default: throw Unknown(k.Name, "backupKeep", path);
                            }
                        }

                        c.BackupRetention = keep;
                        break;
                    case "files":
                        if (p.Value.ValueKind != JsonValueKind.Array)
                        {
                            throw Invalid($"'files' in '{path}' must be an array of paths.");
                        }

                        foreach (var f in p.Value.EnumerateArray())
                        {
                            c.Files.Add(ResolveRelative(f.GetString() ?? "", path));
                        }

                        break;
                    case "alerts": ApplyAlerts(c.Alerts, p.Value, path); break;
                    case "health": ApplyHealth(c.Health, p.Value, path); break;
                    case "outbox":
                        foreach (var o in Obj(p, path))
                        {
                            if (o.Name == "reserveBytes")
                            {
                                c.OutboxReserveBytes = Long(o);
                            }
                            else if (o.Name == "reserveFloorBytes")
                            {
                                c.OutboxReserveFloorBytes = Long(o);
                            }
                            else
                            {
                                throw Unknown(o.Name, "outbox", path);
                            }
                        }

                        break;
                    default: throw Unknown(p.Name, null, path);
                }
            }
        }

        private static void ApplyAlerts(AlertSettings a, JsonElement e, string path)
        {
            foreach (var p in ObjOf(e, "alerts", path))
            {
                switch (p.Name)
                {
                    case "slackWebhook": a.SlackWebhook = Str(p); break;
                    case "webhook": a.Webhook = Str(p); break;
                    case "dedupeWindow": a.DedupeWindow = Durations.Parse(Str(p), "alerts.dedupeWindow"); break;
                    case "escalateAfter": a.EscalateAfter = Durations.Parse(Str(p), "alerts.escalateAfter"); break;
                    case "minSeverity": a.MinSeverity = ParseSeverity(Str(p)); break;
                    case "retries": a.Retries = (int)Long(p); break;
                    case "retryDelay": a.RetryDelay = Durations.Parse(Str(p), "alerts.retryDelay"); break;
                    case "timeout": a.Timeout = Durations.Parse(Str(p), "alerts.timeout"); break;
                    case "smtp":
                        var s = new SmtpSettings();
                        foreach (var q in ObjOf(p.Value, "alerts.smtp", path))
                        {
                            switch (q.Name)
                            {
                                case "host": s.Host = Str(q) ?? ""; break;
                                case "port": s.Port = (int)Long(q); break;
                                case "enableSsl": s.EnableSsl = q.Value.ValueKind == JsonValueKind.True; break;
                                case "from": s.From = Str(q) ?? ""; break;
                                case "to":
                                    if (q.Value.ValueKind == JsonValueKind.String)
                                    {
                                        s.To.Add(q.Value.GetString()!);
                                    }
                                    else
                                    {
                                        foreach (var t in q.Value.EnumerateArray())
                                        {
                                            s.To.Add(t.GetString() ?? "");
                                        }
                                    }

                                    break;
                                case "username": s.Username = Str(q); break;
                                case "password": s.Password = Str(q); break;
                                case "passwordEnv": s.PasswordEnv = Str(q); break;
                                default: throw Unknown(q.Name, "alerts.smtp", path);
                            }
                        }

                        a.Smtp = s;
                        break;
                    default: throw Unknown(p.Name, "alerts", path);
                }
            }
        }

        private static void ApplyHealth(HealthSettings h, JsonElement e, string path)
        {
            foreach (var p in ObjOf(e, "health", path))
            {
                switch (p.Name)
                {
                    case "maxBackupAge": h.MaxBackupAge = Durations.Parse(Str(p), "health.maxBackupAge"); break;
                    case "minFreeBytes": h.MinFreeBytes = Long(p); break;
                    case "criticalFreeBytes": h.CriticalFreeBytes = Long(p); break;
                    case "requireMonitor": h.RequireMonitor = p.Value.ValueKind != JsonValueKind.False; break;
                    default: throw Unknown(p.Name, "health", path);
                }
            }
        }

        /// <summary>Checks everything before the monitor starts. Error messages name the setting, never its secret value.</summary>
        public void Validate()
        {
            if (Stores.Count == 0)
            {
                throw Invalid("No store to monitor: give --store DIR.");
            }

            CheckInterval(Interval, "interval", TimeSpan.FromMilliseconds(100), TimeSpan.FromDays(1));
            CheckInterval(DeepInterval, "deepInterval", Interval, TimeSpan.FromDays(30));
            if (BackupInterval.HasValue)
            {
                CheckInterval(BackupInterval.Value, "backupInterval", TimeSpan.FromSeconds(1), TimeSpan.FromDays(365));
            }

            if (BackupReverify < TimeSpan.Zero || BackupReverify > TimeSpan.FromDays(365))
            {
                throw Invalid($"backupReverify must be 0s to 365d, not {Durations.Format(BackupReverify)}.");
            }

            if (ProbeInterval != TimeSpan.Zero)
            {
                CheckInterval(ProbeInterval, "probeInterval", TimeSpan.FromSeconds(1), TimeSpan.FromDays(30));
            }

            CheckUrl(Alerts.SlackWebhook, "slack webhook (--slack-webhook / alerts.slackWebhook)");
            CheckUrl(Alerts.Webhook, "webhook (--webhook / alerts.webhook)");
            if (Alerts.Retries < 0 || Alerts.Retries > 10)
            {
                throw Invalid($"alerts.retries must be 0 to 10, not {Alerts.Retries}.");
            }

            CheckInterval(Alerts.Timeout, "alerts.timeout", TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(5));
            CheckInterval(Alerts.RetryDelay, "alerts.retryDelay", TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(5));
            if (Alerts.Smtp is SmtpSettings s)
            {
                if (string.IsNullOrWhiteSpace(s.Host))
                {
                    throw Invalid("alerts.smtp.host is required for the email channel.");
                }

                if (s.Port < 1 || s.Port > 65535)
                {
                    throw Invalid($"alerts.smtp.port must be 1 to 65535, not {s.Port}.");
                }

                if (!IsAddress(s.From))
                {
                    throw Invalid("alerts.smtp.from must be an email address.");
                }

                if (s.To.Count == 0 || s.To.Any(t => !IsAddress(t)))
                {
                    throw Invalid("alerts.smtp.to must list one or more email addresses.");
                }

                if (!string.IsNullOrEmpty(s.PasswordEnv) && Environment.GetEnvironmentVariable(s.PasswordEnv!) == null)
                {
                    throw Invalid($"alerts.smtp.passwordEnv names the environment variable '{s.PasswordEnv}', which is not set.");
                }
            }

            if (Health.MinFreeBytes < 0 || Health.CriticalFreeBytes < 0 || OutboxReserveBytes < 0 || OutboxReserveFloorBytes < 0)
            {
                throw Invalid("health.minFreeBytes, health.criticalFreeBytes outbox.reserveBytes and outbox.reserveFloorBytes must be 0 or more.");
            }

            for (int i = 0; i < Files.Count; i++)
            {
                Files[i] = Path.GetFullPath(Files[i]);
                string? dir = Path.GetDirectoryName(Files[i]);
                if (dir == null || !Directory.Exists(dir))
                {
                    throw Invalid($"Guarded file '{Files[i]}': its directory does not exist.");
                }
            }
        }

        public static DamagePolicy ParsePolicy(string? text)
        {
            switch ((text ?? "").Trim().ToLowerInvariant())
            {
                case "alert": return DamagePolicy.Alert;
                case "repair": return DamagePolicy.Repair;
                case "restore": return DamagePolicy.Restore;
                default: throw Invalid($"Unknown damage policy '{text}': use alert, repair or restore.");
            }
        }

        public static AlertSeverity ParseSeverity(string? text)
        {
            if (Enum.TryParse<AlertSeverity>(text, true, out var s) && Enum.IsDefined(typeof(AlertSeverity), s))
            {
                return s;
            }

            throw Invalid($"Unknown severity '{text}': use info, warning, error or critical.");
        }

        private static void CheckInterval(TimeSpan value, string name, TimeSpan min, TimeSpan max)
        {
            if (value < min || value > max)
            {
                throw Invalid($"{name} {Durations.Format(value)} is out of range: it must be from {Durations.Format(min)} to {Durations.Format(max)}.");
            }
        }

        private static void CheckUrl(string? url, string name)
        {
            if (url == null)
            {
                return;
            }

            // The URL itself is a secret (a Slack webhook URL is a bearer token): say what is wrong, never echo it.
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || string.IsNullOrEmpty(uri.Host))
            {
                throw Invalid($"The {name} is not a valid http(s) URL (value not shown: it is a secret).");
            }
        }

        private static bool IsAddress(string? a)
        {
            if (string.IsNullOrWhiteSpace(a))
            {
                return false;
            }

            try
            {
                _ = new System.Net.Mail.MailAddress(a);
                return true;
            }
            catch (FormatException)
            {
                return false;
            }
        }

        private static string ResolveRelative(string file, string configPath)
            => Path.IsPathRooted(file) ? file : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(configPath))!, file));

        private static string? Str(JsonProperty p)
        {
            if (p.Value.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            if (p.Value.ValueKind != JsonValueKind.String)
            {
                throw Invalid($"'{p.Name}' must be a string.");
            }

            return p.Value.GetString();
        }

        private static long Long(JsonProperty p)
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt64(out long v))
            {
                throw Invalid($"'{p.Name}' must be a whole number.");
            }

            return v;
        }

        private static JsonElement.ObjectEnumerator Obj(JsonProperty p, string path) => ObjOf(p.Value, p.Name, path);

        private static JsonElement.ObjectEnumerator ObjOf(JsonElement e, string name, string path)
        {
            if (e.ValueKind != JsonValueKind.Object)
            {
                throw Invalid($"'{name}' in '{path}' must be an object.");
            }

            return e.EnumerateObject();
        }

        private static BmadGuardException Unknown(string name, string? section, string path)
            => Invalid($"Unknown setting '{(section == null ? name : section + "." + name)}' in '{path}'.");

        internal static BmadGuardException Invalid(string message)
            => new BmadGuardException(ErrorCodes.InvalidConfiguration, FailureKind.InvalidInput, message);
    }
}
