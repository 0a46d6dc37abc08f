using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Threading;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace BmadGuard.Tests.Monitoring
{
    /// <summary>The real <c>bmadguard monitor</c> process against real damage, real HTTP and a real kill -9.</summary>
    [Collection(MonitoringCollection.Name)]
    public class MonitorProcessTests
    {
        private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

        /// <summary>The issue's promise: detected, healed and alerted within the interval plus one second.</summary>
        private static readonly TimeSpan Promise = Interval + TimeSpan.FromSeconds(1);

        private readonly ITestOutputHelper _out;

        public MonitorProcessTests(ITestOutputHelper output) => _out = output;

        private static string Str(JsonElement e, string name) => e.GetProperty(name).GetString()!;

        [Fact]
        public void CorruptSegmentTruncatedAndDeletedLegacyFileAreDetectedHealedAlertedAuditedAndCounted()
        {
            using var dir = new TempDir();
            using var slack = new HttpSink();
            string store = Kit.NewStore(dir, 20);
            string legacy = dir.Combine("shared_context.json");
            string original = "{\"stories\":[{\"id\":1,\"status\":\"done\"}],\"agents\":{\"dev\":\"idle\"}}";
            File.WriteAllText(legacy, original);
            Kit.WriteConfig(store, "{ \"probeInterval\": \"0s\", \"alerts\": { \"retries\": 1, \"retryDelay\": \"50ms\", \"timeout\": \"2s\" } }");

            using var m = new MonitorProcess("--store", store, "--file", legacy, "--interval", "2s", "--on-damage", "restore", "--slack-webhook", slack.Url("/services/T000/B000/slacksecret"));
            m.WaitReady(store);
            m.WaitReady(legacy);

            // 1. A torn last record in the active segment: its last 30 bytes never reached the disk (a crash
            //    mid-append). (A complete record with a flipped bit is damage a repair cannot heal without losing
            //    its seq: CrashTests and the backup-healer tests cover that one.)
            string segment = Kit.Segment(store);
            long lastLine = Kit.LineStart(segment, 20);
            long segmentLength = new FileInfo(segment).Length - 30;
            using (var f = new FileStream(segment, FileMode.Open, FileAccess.Write))
            {
                f.SetLength(segmentLength);
            }

            var t0 = DateTimeOffset.UtcNow;
            var detected = m.WaitFor(e => MonitorProcess.Kind(e) == "DamageDetected" && Str(e, "target") == store, TimeSpan.FromSeconds(30));
            Assert.True(detected.HasValue, "store damage not detected. stderr: " + m.StdErr);
            var repaired = m.WaitFor(e => MonitorProcess.Kind(e) == "Repaired" && Str(e, "target") == store, TimeSpan.FromSeconds(30));
            Assert.True(repaired.HasValue, "no Repaired event");
            Assert.Equal("Healed", Str(repaired!.Value, "outcome"));
            Assert.True(repaired.Value.GetProperty("verified").GetBoolean());
            Assert.True(slack.WaitFor(r => r.Body.Contains("Damage detected") && r.Body.Contains(store), TimeSpan.FromSeconds(30)), "no Slack alert");
            var alerted = slack.Requests.First(r => r.Body.Contains("Damage detected"));
            _out.WriteLine($"segment: detected after {(MonitorProcess.Time(detected.Value) - t0).TotalMilliseconds:0} ms, repaired after {(MonitorProcess.Time(repaired.Value) - t0).TotalMilliseconds:0} ms, alerted after {(alerted.At - t0).TotalMilliseconds:0} ms");
            Assert.True(MonitorProcess.Time(detected.Value) - t0 <= Promise, "detection took longer than interval + 1 s");
            Assert.True(MonitorProcess.Time(repaired.Value) - t0 <= Promise, "repair took longer than interval + 1 s");
            Assert.True(alerted.At - t0 <= Promise, "the alert took longer than interval + 1 s");
            Assert.True(slack.WaitFor(r => r.Body.Contains("[RESOLVED]"), TimeSpan.FromSeconds(10)), "no resolved message");

            // The damaged record was cut, not deleted: its bytes are in quarantine; the 19 records before it are intact.
            string torn = Directory.GetFiles(Path.Combine(store, "quarantine"), "*.torn").Single();
            Assert.Equal(segmentLength - lastLine, new FileInfo(torn).Length);
            Assert.Equal(Enumerable.Range(1, 19), Kit.Events(store, "test.n").Select(e => e.GetProperty("data").GetProperty("n").GetInt32()));

            // 2. The legacy file truncated mid-JSON.
            File.WriteAllText(legacy, original.Substring(0, 25));
            var t1 = DateTimeOffset.UtcNow;
            var restored = m.WaitFor(e => MonitorProcess.Kind(e) == "Restored" && Str(e, "target") == legacy, TimeSpan.FromSeconds(30));
            Assert.True(restored.HasValue, "truncated legacy file not restored");
            _out.WriteLine($"truncated legacy file: restored after {(MonitorProcess.Time(restored!.Value) - t1).TotalMilliseconds:0} ms");
            Assert.True(MonitorProcess.Time(restored.Value) - t1 <= Promise);
            Assert.Equal(original, File.ReadAllText(legacy));
            Assert.Contains(Directory.GetFiles(Path.Combine(store, "quarantine"), "*.damaged"), f => File.ReadAllText(f) == original.Substring(0, 25));

            // 3. The legacy file deleted.
            int restoresBefore = m.Events.Count(e => MonitorProcess.Kind(e) == "Restored");
            File.Delete(legacy);
            var t2 = DateTimeOffset.UtcNow;
            var restored2 = m.WaitFor(e => MonitorProcess.Kind(e) == "Restored" && Str(e, "target") == legacy && MonitorProcess.Time(e) >= t2, TimeSpan.FromSeconds(30));
            Assert.True(restored2.HasValue, "deleted legacy file not restored");
            _out.WriteLine($"deleted legacy file: restored after {(MonitorProcess.Time(restored2!.Value) - t2).TotalMilliseconds:0} ms");
            Assert.True(MonitorProcess.Time(restored2.Value) - t2 <= Promise);
            Assert.Equal(original, File.ReadAllText(legacy));
            Assert.True(slack.WaitFor(r => r.Body.Contains("missing"), TimeSpan.FromSeconds(10)), "no alert for the deleted file");

            // The audit log says what was found, what was done, by whom, how long it took.
            var audit = Kit.Audit(store);
            Assert.Equal(3, audit.Count(a => Str(a, "action") == "damage.detected"));
            var repairEntry = audit.Single(a => Str(a, "action") == "repair");
            Assert.StartsWith("Healed", Str(repairEntry, "outcome"));
            Assert.True(repairEntry.GetProperty("durationMs").GetDouble() >= 0);
            Assert.Matches(@"^.+@.+ pid \d+$", Str(repairEntry, "by"));
            Assert.Equal(2, audit.Count(a => Str(a, "action") == "restore"));
            Assert.Contains(audit, a => Str(a, "action") == "alert.delivered");

            // The metrics (rewritten every interval) count it, in a valid Prometheus text format.
            string prom = Path.Combine(store, "metrics.prom");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (!File.ReadAllText(prom).Contains("bmadguard_monitor_restores_total{store=\"" + store + "\"} 2") && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                Thread.Sleep(100);
            }

            string text = File.ReadAllText(prom);
            Assert.Contains("bmadguard_monitor_damage_found_total{store=\"" + store + "\"} 3", text);
            Assert.Contains("bmadguard_monitor_repairs_total{store=\"" + store + "\"} 1", text);
            Assert.Contains("bmadguard_monitor_restores_total{store=\"" + store + "\"} 2", text);
            foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                Assert.Matches(@"^(# (HELP|TYPE) bmadguard_\w+ .+|bmadguard_\w+\{store=""[^""]+""(,quantile=""[0-9.]+"")?\} (NaN|[-+]?[0-9.]+(e[-+]?\d+)?))$", line);
            }

            // metrics.json is replaced right after metrics.prom, so it may lag by one interval.
            string json = Path.Combine(store, "metrics.json");
            clock.Restart();
            int Recoveries()
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(json));
                return doc.RootElement.GetProperty("recoveries").GetArrayLength();
            }

            while (Recoveries() != 3 && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                Thread.Sleep(100);
            }

            Assert.True(Recoveries() == 3, "metrics.json: " + File.ReadAllText(json) + "\nmonitor stderr: " + m.StdErr);

            // SIGTERM: a clean stop, the lock released, the state says so.
            m.Signal(15);
            Assert.Equal(0, m.WaitForExit(TimeSpan.FromSeconds(30)));
            var status = Support.Cli.Run("monitor", "--store", store, "--status");
            Assert.Equal(1, status.ExitCode);
            using var st = JsonDocument.Parse(status.StdOut);
            Assert.False(st.RootElement.GetProperty("alive").GetBoolean());
            Assert.False(st.RootElement.GetProperty("state").GetProperty("running").GetBoolean());
        }

        [Fact]
        public void KilledMonitorRestartsWithoutStaleStateAndASecondMonitorRefuses()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 3);
            using (var first = new MonitorProcess("--store", store, "--interval", "1s"))
            {
                first.WaitReady(store);
                var second = Support.Cli.Run("monitor", "--store", store, "--interval", "1s");
                Assert.Equal(1, second.ExitCode);
                Assert.Contains("MonitorAlreadyRunning", second.StdErr);
                Assert.Contains($"pid {first.Pid}", second.StdErr);

                var alive = Support.Cli.Run("monitor", "--store", store, "--status");
                Assert.Equal(0, alive.ExitCode);
                Assert.Contains($"\"pid\":{first.Pid}", alive.StdOut);

                first.KillHard();
            }

            // The lock died with the process; the heartbeat file is still there but nobody holds the lock.
            var dead = Support.Cli.Run("monitor", "--store", store, "--status");
            Assert.Equal(1, dead.ExitCode);
            Assert.Contains("\"lockHeld\":false", dead.StdOut);

            using var restarted = new MonitorProcess("--store", store, "--interval", "1s");
            restarted.WaitReady(store);
            Thread.Sleep(1500); // one heartbeat
            var again = Support.Cli.Run("monitor", "--store", store, "--status");
            Assert.Equal(0, again.ExitCode);
            Assert.Contains($"\"pid\":{restarted.Pid}", again.StdOut);
            Assert.DoesNotContain("MonitorAlreadyRunning", restarted.StdErr);
        }

        [Fact]
        public void DamageInsideTheLogIsReportedCriticalAndNothingIsCut()
        {
            using var dir = new TempDir();
            using var hook = new HttpSink();
            string store = Kit.NewStore(dir, 10);
            string segment = Kit.Segment(store);
            Kit.FlipByte(segment, Kit.LineStart(segment, 3) + 12); // inside record 3, records 4..10 follow
            byte[] damaged = File.ReadAllBytes(segment);

            var r = Support.Cli.Run("monitor", "--store", store, "--once", "--on-damage", "repair", "--webhook", hook.Url("/hook/abc"));
            Assert.Equal(1, r.ExitCode);
            var events = r.Lines.Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            var found = events.Single(e => MonitorProcess.Kind(e) == "DamageDetected");
            Assert.Equal("ChecksumMismatch", found.GetProperty("findings")[0].GetProperty("kind").GetString());
            // Repair would lose records, so the monitor turns to a backup (policy repair); there is none to restore from.
            var restored = events.Single(e => MonitorProcess.Kind(e) == "Restored");
            Assert.Equal("NotPossible", Str(restored, "outcome"));
            Assert.False(restored.GetProperty("verified").GetBoolean());
            Assert.Contains("No verified backup", restored.ToString());
            Assert.Contains(Kit.Audit(store), a => Str(a, "action") == "repair" && Str(a, "outcome") == "NotPossible");
            Assert.Equal(damaged, File.ReadAllBytes(segment)); // untouched
            Assert.True(hook.WaitFor(x => x.Body.Contains("\"severity\":\"critical\""), TimeSpan.FromSeconds(10)), "no critical alert");
        }

        [Fact]
        public void ChannelsThatAreDownAreRetriedAndReportedWhileTheMonitorKeepsCheckingAndNoSecretLeaks()
        {
            const string secret = "SECRET-hook-token-4242";
            using var dir = new TempDir();
            using var broken = new HttpSink { Status = 500 };
            string store = Kit.NewStore(dir, 5);
            Kit.WriteConfig(store, "{ \"probeInterval\": \"0s\", \"alerts\": { \"retries\": 2, \"retryDelay\": \"50ms\", \"timeout\": \"1s\" } }");
            string refused = $"http://127.0.0.1:{HttpSink.FreePort()}/services/{secret}";
            using var m = new MonitorProcess("--store", store, "--interval", "1s", "--on-damage", "alert",
                "--webhook", broken.Url("/hook/" + secret), "--slack-webhook", refused);
            m.WaitReady(store);

            string segment = Kit.Segment(store);
            Kit.FlipByte(segment, Kit.LineStart(segment, 2) + 5);
            Assert.NotNull(m.WaitFor(e => MonitorProcess.Kind(e) == "DamageDetected", TimeSpan.FromSeconds(30)));
            var failedWebhook = m.WaitFor(e => MonitorProcess.Kind(e) == "AlertFailed" && Str(e, "channel").StartsWith("webhook", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            var failedSlack = m.WaitFor(e => MonitorProcess.Kind(e) == "AlertFailed" && Str(e, "channel").StartsWith("slack", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
            Assert.True(failedWebhook.HasValue && failedSlack.HasValue, "failures not reported: " + m.StdOut);
            Assert.Equal(3, failedWebhook!.Value.GetProperty("attempts").GetInt32());
            Assert.Contains("HTTP 500", Str(failedWebhook.Value, "error"));
            Assert.Equal(3, broken.Attempts);

            // The monitor goes on checking after the failures, and says it is alive.
            var last = new[] { MonitorProcess.Time(failedWebhook.Value), MonitorProcess.Time(failedSlack!.Value) }.Max();
            Assert.NotNull(m.WaitFor(e => MonitorProcess.Kind(e) == "Checked" && MonitorProcess.Time(e) > last + TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30)));
            Assert.Equal(0, Support.Cli.Run("monitor", "--store", store, "--status").ExitCode);
            Assert.Contains(Kit.Audit(store), a => Str(a, "action") == "alert.failed");

            m.Signal(15);
            Assert.Equal(0, m.WaitForExit(TimeSpan.FromSeconds(30)));
            foreach (string text in new[] { m.StdOut, m.StdErr, Kit.AllText(store) })
            {
                Assert.DoesNotContain(secret, text);
            }
        }

        /// <summary>Several writer processes appending while the monitor checks on every change: no false alarm, nothing cut.</summary>
        [Fact]
        public async System.Threading.Tasks.Task BusyWritersAreNotMistakenForDamage()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 0);
            using var m = new MonitorProcess("--store", store, "--interval", "500ms", "--on-damage", "repair");
            m.WaitReady(store);
            for (int round = 0; round < 3; round++)
            {
                var writers = Enumerable.Range(0, 3).Select(w => System.Threading.Tasks.Task.Run(() =>
                {
                    var sb = new System.Text.StringBuilder();
                    for (int i = 0; i < 200; i++)
                    {
                        sb.Append("{\"type\":\"load.w").Append(w).Append("\",\"data\":{\"i\":").Append(i).Append(",\"pad\":\"").Append('x', 100).Append("\"}}\n");
                    }

                    return Support.Cli.RunWithStdin(sb.ToString(), "publish", "--store", store, "--stdin");
                })).ToArray();
                var results = await System.Threading.Tasks.Task.WhenAll(writers);
                Assert.All(results, r => Assert.Equal(0, r.ExitCode));
            }

            Thread.Sleep(1500); // a couple more checks after the last append
            Assert.DoesNotContain(m.Events, e => MonitorProcess.Kind(e) == "DamageDetected");
            Assert.True(m.Events.Count(e => MonitorProcess.Kind(e) == "Checked") > 3);
            Assert.Empty(Directory.GetFiles(Path.Combine(store, "quarantine")));
            Assert.Equal(1800, Kit.Events(store).Count);
        }
    }
}
