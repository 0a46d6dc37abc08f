using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Legacy;
using BmadGuard.Tests.Support;
using Xunit;
using CliRunner = BmadGuard.Tests.Support.Cli;

namespace BmadGuard.Tests.Integrity
{
    /// <summary>Linux: the legacy agents' lock is flock(2), and the tests run real python3 processes.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public sealed class LegacyGuardTests
    {
        private static string CopyFixture(TempDir dir, string name = "shared_context.json")
        {
            string path = dir.Combine(name);
            File.Copy(LegacySalvageTests.FixturePath, path);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            return path;
        }

        private static List<JsonElement> Events(string path)
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.GetProperty("events").EnumerateArray().Select(e => e.Clone()).ToList();
        }

        [Fact]
        public void PublishAppendsKeepsEarlierBytesTakesGenerationsAndAppliesRetention()
        {
            using var dir = new TempDir();
            string file = CopyFixture(dir);
            byte[] original = File.ReadAllBytes(file);
            var ranges = LegacySalvageTests.EventRanges(original);
            byte[] beforeLast = original;
            LegacyPublishResult? last = null;
            for (int i = 0; i < 5; i++)
            {
                beforeLast = File.ReadAllBytes(file);
                last = LegacyBusFile.Publish(file, "story_created", "{\"n\":" + i + ",\"name\":\"é\"}", new LegacyWriteOptions { KeepGenerations = 3 });
            }

            var events = Events(file);
            Assert.Equal(79, events.Count);
            Assert.Equal(79, last!.EventCount);
            Assert.Equal("story_created", events[^1].GetProperty("event").GetString());
            Assert.Equal(4, events[^1].GetProperty("data").GetProperty("n").GetInt32());
            Assert.Equal("é", events[^1].GetProperty("data").GetProperty("name").GetString());
            Assert.True(LegacyEvent.TryParseTimestamp(events[^1].GetProperty("timestamp").GetString()!, TimeZoneInfo.Utc, out var ts));
            Assert.InRange(ts, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));
            // The original events are untouched, byte for byte.
            byte[] now = File.ReadAllBytes(file);
            Assert.True(now.AsSpan(0, ranges[^1].End).SequenceEqual(original.AsSpan(0, ranges[^1].End)));

            var generations = LegacyBusFile.ListGenerations(file);
            Assert.Equal(3, generations.Count);
            Assert.Equal(beforeLast, File.ReadAllBytes(generations[^1]));
            Assert.Equal(last.GenerationPath, generations[^1]);
            Assert.All(generations, g => Assert.StartsWith(dir.Combine(".bmadguard-generations", "shared_context.json."), g));
            Assert.True(JsonFileVerifier.Verify(file).Healthy);
            // The agents' file keeps its permissions.
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(file));
        }

        [Fact]
        public void PublishRefusesADamagedFileAndChangesNothing()
        {
            using var dir = new TempDir();
            string file = dir.Combine("shared_context.json");
            byte[] damaged = File.ReadAllBytes(LegacySalvageTests.FixturePath).AsSpan(0, 5000).ToArray();
            File.WriteAllBytes(file, damaged);
            var ex = Assert.Throws<BmadGuardException>(() => LegacyBusFile.Publish(file, "a_b", "{}"));
            Assert.Equal(ErrorCodes.LegacyFileDamaged, ex.Code);
            Assert.Equal(damaged, File.ReadAllBytes(file));
            Assert.False(Directory.Exists(dir.Combine(".bmadguard-generations")));

            var bad = Assert.Throws<BmadGuardException>(() => LegacyBusFile.Publish(dir.Combine("new.json"), "a_b", "[1]"));
            Assert.Equal(ErrorCodes.DataNotObject, bad.Code);
            Assert.False(File.Exists(dir.Combine("new.json")));
            var created = LegacyBusFile.Publish(dir.Combine("new.json"), "a_b", null);
            Assert.True(created.Created);
            Assert.Single(Events(dir.Combine("new.json")));
        }

        private const string InPlaceWriter = @"
import fcntl, sys, time
path = sys.argv[1]
data = open(path, 'rb').read()
with open(path + '.lock', 'a') as lf:
    fcntl.flock(lf, fcntl.LOCK_EX)
    with open(path, 'r+b') as f:
        f.truncate(0)
        f.write(data[:len(data) // 2])
        f.flush()
        print('half', flush=True)
        time.sleep(1.0)
        f.write(data[len(data) // 2:])
    fcntl.flock(lf, fcntl.LOCK_UN)
";

        /// <summary>An agent that rewrites the file in place under its lock: verify waits for the lock and never sees half a file.</summary>
        [Fact]
        public void VerifyWaitsForTheAgentsLockWhenTheLockFileExists()
        {
            using var dir = new TempDir();
            string file = CopyFixture(dir);
            string script = dir.Combine("inplace.py");
            File.WriteAllText(script, InPlaceWriter);
            var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, UseShellExecute = false };
            psi.ArgumentList.Add(script);
            psi.ArgumentList.Add(file);
            using var p = Process.Start(psi)!;
            Assert.Equal("half", p.StandardOutput.ReadLine());
            var report = JsonFileVerifier.Verify(file);
            Assert.True(p.WaitForExit(30_000));
            Assert.True(report.Healthy, string.Join("\n", report.Findings));
            Assert.Empty(report.Findings);
            Assert.Equal(74, report.RecordsChecked);
        }

        private const string PythonWriter = @"
import fcntl, json, os, sys, tempfile, time
from datetime import datetime
path, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
d = os.path.dirname(path)
for i in range(n):
    with open(path + '.lock', 'a') as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        try:
            with open(path) as f:
                doc = json.load(f)
            doc['events'].append({'timestamp': datetime.now().isoformat(), 'event': 'py_event', 'data': {'writer': tag, 'i': i}})
            fd, tmp = tempfile.mkstemp(dir=d, prefix='.py-', suffix='.tmp')
            with os.fdopen(fd, 'w') as f:
                json.dump(doc, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            dfd = os.open(d, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
        finally:
            fcntl.flock(lf, fcntl.LOCK_UN)
    time.sleep(0.003)
";

        /// <summary>
        /// Python agents (fcntl.flock on &lt;file&gt;.lock, read-modify-write, atomic replace) and BmadGuard processes
        /// (guarded publishes with generations, verifies, repairs) on one file at once: no event is lost, and the
        /// file parses as strict JSON at every moment a poller looks.
        /// </summary>
        [Fact]
        public void PythonAgentsAndBmadGuardShareTheFileWithoutLoss()
        {
            using var dir = new TempDir();
            string file = CopyFixture(dir);
            string script = dir.Combine("writer.py");
            File.WriteAllText(script, PythonWriter);
            const int pyWriters = 2, pyEvents = 40, bgWriters = 2, bgEvents = 8;

            long polls = 0;
            var invalid = new ConcurrentQueue<string>();
            using var stop = new CancellationTokenSource();
            var poller = new Thread(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        using var doc = JsonDocument.Parse(File.ReadAllBytes(file), new JsonDocumentOptions { AllowDuplicateProperties = false });
                        if (doc.RootElement.GetProperty("events").ValueKind != JsonValueKind.Array)
                        {
                            invalid.Enqueue("no events array");
                        }
                    }
                    catch (Exception ex)
                    {
                        invalid.Enqueue(ex.GetType().Name + ": " + ex.Message);
                    }

                    Interlocked.Increment(ref polls);
                }
            });
            poller.Start();

            var python = Enumerable.Range(0, pyWriters).Select(w =>
            {
                var psi = new ProcessStartInfo("python3") { RedirectStandardError = true, UseShellExecute = false };
                psi.ArgumentList.Add(script);
                psi.ArgumentList.Add(file);
                psi.ArgumentList.Add(pyEvents.ToString());
                psi.ArgumentList.Add("py" + w);
                return Process.Start(psi)!;
            }).ToList();

            var failures = new ConcurrentQueue<string>();
            var bg = Enumerable.Range(0, bgWriters).Select(w => new Thread(() =>
            {
                for (int i = 0; i < bgEvents; i++)
                {
                    var r = CliRunner.Run("publish-legacy", "--file", file, "--type", "bg_event", "--data", $"{{\"writer\":\"bg{w}\",\"i\":{i}}}", "--keep", "5");
                    if (r.ExitCode != 0)
                    {
                        failures.Enqueue("publish: " + r.StdErr);
                    }

                    if (i % 3 == 0)
                    {
                        var v = CliRunner.Run(w == 0 ? "verify" : "repair", "--file", file);
                        if (v.ExitCode != 0)
                        {
                            failures.Enqueue((w == 0 ? "verify: " : "repair: ") + v.StdOut + v.StdErr);
                        }
                    }
                }
            })).ToList();
            bg.ForEach(t => t.Start());
            bg.ForEach(t => t.Join());
            foreach (var p in python)
            {
                Assert.True(p.WaitForExit(120_000));
                Assert.True(p.ExitCode == 0, p.StandardError.ReadToEnd());
            }

            stop.Cancel();
            poller.Join();

            Assert.Empty(failures);
            Assert.Empty(invalid);
            Assert.True(polls > 50, $"only {polls} polls");
            var events = Events(file);
            Assert.Equal(74 + (pyWriters * pyEvents) + (bgWriters * bgEvents), events.Count);
            var keys = events.Skip(74).Select(e => e.GetProperty("data").GetProperty("writer").GetString() + "/" + e.GetProperty("data").GetProperty("i").GetInt32()).ToList();
            Assert.Equal(keys.Count, keys.Distinct().Count());
            for (int w = 0; w < pyWriters; w++)
            {
                for (int i = 0; i < pyEvents; i++)
                {
                    Assert.Contains($"py{w}/{i}", keys);
                }
            }

            for (int w = 0; w < bgWriters; w++)
            {
                for (int i = 0; i < bgEvents; i++)
                {
                    Assert.Contains($"bg{w}/{i}", keys);
                }
            }

            var generations = LegacyBusFile.ListGenerations(file);
            Assert.Equal(5, generations.Count);
            Assert.All(generations, g => Assert.True(JsonFileVerifier.Verify(g).Healthy));
            Assert.False(Directory.Exists(dir.Combine(".bmadguard-quarantine")));
        }
    }
}
