using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Alerts;
using BmadGuard.Core.Monitoring;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Monitoring
{
    [Collection(MonitoringCollection.Name)]
    public class AlertTests
    {
        private const string Secret = "T0K3N-s3cr3t-9f8e7d";

        private sealed class Collector : IObserver<MonitorEvent>
        {
            public ConcurrentQueue<MonitorEvent> Events { get; } = new ConcurrentQueue<MonitorEvent>();

            public void OnNext(MonitorEvent value) => Events.Enqueue(value);

            public void OnError(Exception error)
            {
            }

            public void OnCompleted()
            {
            }
        }

        private static AlertSettings Fast(int retries = 2) => new AlertSettings
        {
            Retries = retries,
            RetryDelay = TimeSpan.FromMilliseconds(20),
            Timeout = TimeSpan.FromSeconds(2),
            DedupeWindow = TimeSpan.FromMinutes(10),
            EscalateAfter = TimeSpan.FromMinutes(30),
        };

        [Fact]
        public void TestAlertReachesSlackWebhookAndEmailWithoutLeakingSecrets()
        {
            using var dir = new TempDir();
            using var http = new HttpSink();
            const string password = "smtp-Pa55-secret-XYZ";
            using var smtp = new SmtpSink(dir.Combine("mail"), "alerts", password);
            string store = Kit.NewStore(dir, 0);
            Environment.SetEnvironmentVariable("BMADGUARD_TEST_SMTP_PW", null);
            Kit.WriteConfig(store, $@"{{ ""alerts"": {{
                ""slackWebhook"": ""{http.Url("/services/T1/B2/" + Secret)}"",
                ""webhook"": ""{http.Url("/generic/" + Secret)}"",
                ""smtp"": {{ ""host"": ""127.0.0.1"", ""port"": {smtp.Port}, ""from"": ""bmadguard@example.test"", ""to"": [""ops@example.test""], ""username"": ""alerts"", ""password"": ""{password}"" }},
                ""retries"": 1, ""retryDelay"": ""50ms"", ""timeout"": ""5s"" }} }}");

            var r = Support.Cli.Run("alert", "--store", store, "--test");
            Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
            using var doc = JsonDocument.Parse(r.StdOut);
            var channels = doc.RootElement.GetProperty("channels").EnumerateArray().ToList();
            Assert.Equal(3, channels.Count);
            Assert.All(channels, c => Assert.True(c.GetProperty("delivered").GetBoolean()));

            var slack = http.Requests.Single(x => x.Path.StartsWith("/services/", StringComparison.Ordinal));
            using (var body = JsonDocument.Parse(slack.Body))
            {
                Assert.Contains("Test alert", body.RootElement.GetProperty("text").GetString());
                Assert.Single(body.RootElement.EnumerateObject()); // Slack's shape: {"text": ...}
            }

            var generic = http.Requests.Single(x => x.Path.StartsWith("/generic/", StringComparison.Ordinal));
            using (var body = JsonDocument.Parse(generic.Body))
            {
                Assert.Equal("test", body.RootElement.GetProperty("kind").GetString());
                Assert.Equal("warning", body.RootElement.GetProperty("severity").GetString());
                Assert.Equal(store, body.RootElement.GetProperty("target").GetString());
            }

            Assert.True(smtp.WaitFor(m => m.Contains("Test alert"), TimeSpan.FromSeconds(10)), "no email arrived");
            string mail = smtp.Messages().Single();
            Assert.Contains("X-Auth-User: True", mail); // authenticated with the configured password
            Assert.Contains("ops@example.test", mail);

            // The secrets: not in the output, not in the audit log, not in any alert text.
            foreach (string text in new[] { r.StdOut, r.StdErr, Kit.AllText(store), slack.Body, generic.Body, mail })
            {
                Assert.DoesNotContain(Secret, text);
                Assert.DoesNotContain(password, text);
            }

            Assert.Contains("slack http://127.0.0.1:" + http.Port + "/***", r.StdOut);
        }

        [Fact]
        public void DuplicatesAreSuppressedPersistingProblemsEscalateAndRecoverySaysResolved()
        {
            using var dir = new TempDir();
            using var http = new HttpSink();
            string store = Kit.NewStore(dir, 0);
            var now = DateTimeOffset.Parse("2026-01-01T00:00:00Z");
            var settings = Fast();
            settings.DedupeWindow = TimeSpan.FromMinutes(10);
            settings.EscalateAfter = TimeSpan.FromMinutes(30);
            var redactor = new Redactor();
            var events = new Collector();
            using var d = new AlertDispatcher(settings, new IAlertChannel[] { new WebhookChannel(http.Url("/h")) }, new AuditLog(store, redactor), redactor, events.OnNext, () => now);

            Assert.NotNull(d.Raise("damage:x", AlertSeverity.Error, "Damage", "bad bytes", "x"));
            now += TimeSpan.FromMinutes(1);
            Assert.Null(d.Raise("damage:x", AlertSeverity.Error, "Damage", "bad bytes", "x")); // identical, inside the window
            now += TimeSpan.FromMinutes(1);
            Assert.Null(d.Raise("damage:x", AlertSeverity.Error, "Damage", "bad bytes", "x"));
            now += TimeSpan.FromMinutes(29); // 31 min after first raised
            var escalated = d.Raise("damage:x", AlertSeverity.Error, "Damage", "bad bytes", "x");
            Assert.NotNull(escalated);
            Assert.Equal(AlertKind.Escalated, escalated!.Kind);
            Assert.Equal(AlertSeverity.Critical, escalated.Severity);
            var resolved = d.Resolve("damage:x", "repaired");
            Assert.Equal(AlertKind.Resolved, resolved!.Kind);
            Assert.Null(d.Resolve("damage:x", "again")); // nothing open any more
            Assert.True(d.Flush(TimeSpan.FromSeconds(10)));

            var bodies = http.Requests.Select(x => JsonDocument.Parse(x.Body).RootElement).ToList();
            Assert.Equal(new[] { "raised", "escalated", "resolved" }, bodies.Select(b => b.GetProperty("kind").GetString()));
            Assert.Equal(new[] { "error", "critical", "critical" }, bodies.Select(b => b.GetProperty("severity").GetString()));
            Assert.Equal(2, d.Suppressed);
            Assert.Equal(3, events.Events.OfType<AlertSent>().Count());
        }

        [Theory]
        [InlineData("refused")]
        [InlineData("http500")]
        [InlineData("slow")]
        public void AFailingChannelIsRetriedReportedAndNeverThrows(string mode)
        {
            using var dir = new TempDir();
            using var http = new HttpSink();
            string store = Kit.NewStore(dir, 0);
            string url;
            var settings = Fast(retries: 2);
            switch (mode)
            {
                case "refused":
                    url = $"http://127.0.0.1:{HttpSink.FreePort()}/hooks/{Secret}"; // nobody listens
                    break;
                case "http500":
                    http.Status = 500;
                    url = http.Url("/hooks/" + Secret);
                    break;
                default:
                    http.Delay = TimeSpan.FromSeconds(5);
                    settings.Timeout = TimeSpan.FromMilliseconds(300);
                    url = http.Url("/hooks/" + Secret);
                    break;
            }

            var redactor = new Redactor();
            redactor.AddSecret(url);
            var events = new Collector();
            var audit = new AuditLog(store, redactor);
            using var d = new AlertDispatcher(settings, new IAlertChannel[] { new WebhookChannel(url) }, audit, redactor, events.OnNext);
            d.Raise("k", AlertSeverity.Error, "Damage", "text", store); // returns at once; delivery is in the background
            Assert.True(d.Flush(TimeSpan.FromSeconds(30)));

            var failed = events.Events.OfType<AlertFailed>().Single();
            Assert.Equal(3, failed.Attempts); // the first try and two retries
            if (mode != "refused")
            {
                // The sink counts a request on a task of its own, which can lag the client's timeout under load.
                var seen = System.Diagnostics.Stopwatch.StartNew();
                while (Volatile.Read(ref http.Attempts) < 3 && seen.Elapsed < TimeSpan.FromSeconds(10))
                {
                    Thread.Sleep(20);
                }

                Assert.Equal(3, Volatile.Read(ref http.Attempts));
            }

            Assert.Contains(mode == "http500" ? "HTTP 500" : mode == "slow" ? "no answer within 300ms" : "refused", failed.Error, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(Secret, failed.Error);
            Assert.DoesNotContain(Secret, failed.Message);
            Assert.DoesNotContain(Secret, failed.Channel);
            var entry = Kit.Audit(store).Single(a => a.GetProperty("action").GetString() == "alert.failed");
            Assert.DoesNotContain(Secret, entry.GetRawText());
            Assert.DoesNotContain(Secret, Kit.AllText(store));
        }

        [Fact]
        public void RedactorRemovesUrlsInEveryShape()
        {
            var r = new Redactor();
            string url = "https://hooks.slack.com/services/T00/B00/" + Secret + "?x=1";
            r.AddSecret(url);
            r.AddSecret("hunter2-password");
            Assert.DoesNotContain(Secret, r.Redact("POST " + url + " failed"));
            Assert.DoesNotContain(Secret, r.Redact("path /services/T00/B00/" + Secret + "?x=1"));
            Assert.DoesNotContain(Secret, r.Redact(Uri.EscapeDataString(url)));
            Assert.Equal("auth *** rejected", r.Redact("auth hunter2-password rejected"));
            Assert.Equal("https://hooks.slack.com:443/***", Redactor.DescribeUrl(url));
        }

        [Fact]
        public void AlertTestReportsAFailingChannelWithExitOneAndNoSecret()
        {
            using var dir = new TempDir();
            using var ok = new HttpSink();
            using var broken = new HttpSink { Status = 500 };
            string store = Kit.NewStore(dir, 0);
            var r = Support.Cli.Run("alert", "--store", store, "--test", "--slack-webhook", ok.Url("/s/" + Secret), "--webhook", broken.Url("/w/" + Secret));
            Assert.Equal(1, r.ExitCode);
            using var doc = JsonDocument.Parse(r.StdOut);
            var channels = doc.RootElement.GetProperty("channels").EnumerateArray().ToDictionary(c => c.GetProperty("channel").GetString()!.Split(' ')[0], c => c.Clone());
            Assert.True(channels["slack"].GetProperty("delivered").GetBoolean());
            Assert.False(channels["webhook"].GetProperty("delivered").GetBoolean());
            Assert.Equal(4, channels["webhook"].GetProperty("attempts").GetInt32()); // default: 3 retries
            Assert.Contains("AlertDeliveryFailed", r.StdErr);
            Assert.DoesNotContain(Secret, r.StdOut + r.StdErr + Kit.AllText(store));

            var none = Support.Cli.Run("alert", "--store", store, "--test");
            Assert.Equal(2, none.ExitCode);
            Assert.Contains("No alert channel is configured", none.StdErr);
        }
    }
}
