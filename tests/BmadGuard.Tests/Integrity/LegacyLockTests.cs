using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core;
using BmadGuard.Core.Legacy;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;
using CliRunner = BmadGuard.Tests.Support.Cli;

namespace BmadGuard.Tests.Integrity
{
    /// <summary>The agents' lock on a legacy bus file (issue 10 item 3): identity checked after flock, never deleted, and a bus that deletes it detected.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public sealed class LegacyLockTests
    {
        private static Process Python(string script, params string[] args)
        {
            var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
            psi.ArgumentList.Add(script);
            foreach (var a in args)
            {
                psi.ArgumentList.Add(a);
            }

            return Process.Start(psi)!;
        }

        /// <summary>
        /// Holds the lock, then (as the old bus does) unlinks the lock file, and a second holder creates and locks a
        /// new one before the first releases: a waiter that wakes on the unlinked file must not think it holds the lock.
        /// </summary>
        private const string ReplacingHolder = @"
import fcntl, os, sys
lock = sys.argv[1]
a = open(lock, 'a'); fcntl.flock(a, fcntl.LOCK_EX)
print('held', flush=True); sys.stdin.readline()
os.unlink(lock)
b = open(lock, 'a'); fcntl.flock(b, fcntl.LOCK_EX)
fcntl.flock(a, fcntl.LOCK_UN); a.close()
print('replaced', flush=True); sys.stdin.readline()
fcntl.flock(b, fcntl.LOCK_UN); b.close()
print('released', flush=True); sys.stdin.readline()
";

        [Fact]
        public void AWaiterWakingOnADeletedLockFileTakesTheLockAtThePathInstead()
        {
            using var dir = new TempDir();
            string lockPath = dir.Combine("bus.json.lock");
            string script = dir.Combine("holder.py");
            File.WriteAllText(script, ReplacingHolder);
            using var p = Python(script, lockPath);
            Assert.Equal("held", p.StandardOutput.ReadLine());

            StoreLock? got = null;
            Exception? error = null;
            var acquired = new ManualResetEventSlim();
            var t = new Thread(() =>
            {
                try
                {
                    got = StoreLock.Acquire(lockPath, TimeSpan.FromSeconds(30));
                }
                catch (Exception ex)
                {
                    error = ex;
                }

                acquired.Set();
            });
            t.Start();
            Thread.Sleep(200); // let it wait on the first lock file (no assertion depends on the timing)
            p.StandardInput.WriteLine("go");
            Assert.Equal("replaced", p.StandardOutput.ReadLine());
            // The Python process now holds the lock file at the path; the old one is unlinked and released.
            bool early = acquired.Wait(1000);
            p.StandardInput.WriteLine("go");
            Assert.Equal("released", p.StandardOutput.ReadLine());
            Assert.True(acquired.Wait(30_000));
            p.StandardInput.WriteLine("go");
            p.WaitForExit(10_000);
            Assert.Null(error);
            using (got)
            {
                Assert.False(early, "the lock was 'acquired' on an unlinked lock file while another process held the one at the path");
                Assert.NotNull(got);
            }
        }

        private const string Unlinker = @"
import os, sys, time
lock, seconds = sys.argv[1], float(sys.argv[2])
end = time.time() + seconds
print('go', flush=True)
while time.time() < end:
    try:
        os.unlink(lock)
    except FileNotFoundError:
        pass
";

        /// <summary>The lock file vanishing between "does it exist" and open() must never fail an acquire (it used to: errno 2).</summary>
        [Fact]
        public void ALockFileDeletedDuringTheOpenNeverFailsTheAcquire()
        {
            using var dir = new TempDir();
            string lockPath = dir.Combine("bus.json.lock");
            string script = dir.Combine("unlinker.py");
            File.WriteAllText(script, Unlinker);
            using var p = Python(script, lockPath, "2");
            Assert.Equal("go", p.StandardOutput.ReadLine());
            var errors = new List<string>();
            int n = 0;
            while (!p.HasExited)
            {
                try
                {
                    using var l = StoreLock.Acquire(lockPath, TimeSpan.FromSeconds(5));
                    n++;
                }
                catch (Exception ex)
                {
                    errors.Add(ex.GetType().Name + ": " + ex.Message);
                }
            }

            Assert.True(n > 0);
            Assert.True(errors.Count == 0, $"{errors.Count} of {n + errors.Count} acquires failed, e.g. {errors.FirstOrDefault()}");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(lockPath) & (UnixFileMode)0x1FF);
        }

        /// <summary>A faithful stand-in for the old bus: flock on &lt;file&gt;.lock, whole-file rewrite, unlink the lock file after LOCK_UN.</summary>
        internal const string DeletingBus = @"
import fcntl, json, os, sys, time
from datetime import datetime
path, seconds, tag = sys.argv[1], float(sys.argv[2]), sys.argv[3]
lock = path + '.lock'
end = time.time() + seconds
i = 0
while time.time() < end:
    with open(lock, 'w') as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        try:
            with open(path) as f:
                doc = json.load(f)
            doc['events'].append({'timestamp': datetime.now().isoformat(), 'event': 'py_event', 'data': {'writer': tag, 'i': i}})
            tmp = path + '.' + tag + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(doc, f, indent=2)
            os.replace(tmp, path)
        finally:
            fcntl.flock(lf, fcntl.LOCK_UN)
    try:
        os.unlink(lock)
    except FileNotFoundError:
        pass
    i += 1
    time.sleep(0.002)
";

        /// <summary>
        /// BmadGuard's legacy publish beside writers that delete the lock file: every event it acknowledged is in the
        /// final file, and it refuses (LegacyLockFileDeleted) instead of acknowledging what it cannot keep.
        /// </summary>
        [Fact]
        public void PublishBesideABusThatDeletesItsLockFileNeverAcknowledgesALostEvent()
        {
            using var dir = new TempDir();
            string file = dir.Combine("shared_context.json");
            File.WriteAllText(file, "{\n  \"events\": []\n}");
            // BmadGuard published here before: it keeps the lock file, so its disappearance is evidence.
            LegacyBusFile.Publish(file, "bg_first", "{}");
            string script = dir.Combine("bus.py");
            File.WriteAllText(script, DeletingBus);
            var python = Enumerable.Range(0, 2).Select(w => Python(script, file, "3", "py" + w)).ToList();

            var acked = new ConcurrentBag<string>();
            var refused = new ConcurrentBag<string>();
            var other = new ConcurrentBag<string>();
            var threads = Enumerable.Range(0, 2).Select(w => new Thread(() =>
            {
                for (int i = 0; python.Any(p => !p.HasExited); i++)
                {
                    string key = $"bg{w}-{i}";
                    try
                    {
                        LegacyBusFile.Publish(file, "bg_event", $"{{\"key\":\"{key}\"}}", new LegacyWriteOptions { KeepGenerations = 3 });
                        acked.Add(key);
                    }
                    catch (BmadGuardException ex) when (ex.Code == "LegacyLockFileDeleted")
                    {
                        refused.Add(key);
                    }
                    catch (Exception ex)
                    {
                        other.Add(ex.Message);
                    }

                    Thread.Sleep(3);
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            foreach (var p in python)
            {
                Assert.True(p.WaitForExit(30_000));
            }

            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            var present = new HashSet<string>(doc.RootElement.GetProperty("events").EnumerateArray()
                .Where(e => e.GetProperty("data").ValueKind == JsonValueKind.Object && e.GetProperty("data").TryGetProperty("key", out _))
                .Select(e => e.GetProperty("data").GetProperty("key").GetString()!));
            var lost = acked.Where(k => !present.Contains(k)).ToList();
            Assert.True(lost.Count == 0, $"{lost.Count} of {acked.Count} acknowledged events are not in the file (refused {refused.Count}): {string.Join(", ", lost.Take(10))}");
            Assert.NotEmpty(refused);
            Assert.True(other.IsEmpty, string.Join("\n", other.Take(5)));

            // The command line says so too, with its fix, exit 1.
            File.Delete(file + ".lock");
            var cli = CliRunner.Run("publish-legacy", "--file", file, "--type", "bg_cli");
            Assert.Equal(1, cli.ExitCode);
            Assert.Contains("LegacyLockFileDeleted", cli.StdErr);
            Assert.Contains("keep its lock file", cli.StdErr);

        }
    }
}
