using System;
using System.Diagnostics;
using System.IO;
using System.Threading;
using BmadGuard.Core;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Store
{
    /// <summary>The writers' lock against a real other process (Python's fcntl.flock, as the legacy agents use).</summary>
    public class StoreLockTests
    {
        /// <summary>Starts python3 holding flock(LOCK_EX) on the file for the given time; returns once it holds it.</summary>
        private static Process HoldWithPython(string lockPath, double seconds)
        {
            var psi = new ProcessStartInfo("python3")
            {
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("import fcntl,sys,time\nf=open(sys.argv[1],'a+')\nfcntl.flock(f,fcntl.LOCK_EX)\nprint('held',flush=True)\ntime.sleep(float(sys.argv[2]))\n");
            psi.ArgumentList.Add(lockPath);
            psi.ArgumentList.Add(seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var p = Process.Start(psi)!;
            Assert.Equal("held", p.StandardOutput.ReadLine());
            return p;
        }

        [Fact]
        public void A_waiter_gets_the_lock_when_another_process_releases_it()
        {
            using var dir = new TempDir();
            string path = dir.Combine("writer.lock");
            using var holder = HoldWithPython(path, 0.4);
            var clock = Stopwatch.StartNew();
            using (var held = StoreLock.Acquire(path, TimeSpan.FromSeconds(10)))
            {
                Assert.True(holder.HasExited || holder.WaitForExit(1000), "the holder must have released first");
            }

            Assert.InRange(clock.Elapsed.TotalSeconds, 0.1, 9);
        }

        [Fact]
        public void A_timeout_fails_with_LockTimeout_and_the_abandoned_waiter_never_keeps_the_lock()
        {
            using var dir = new TempDir();
            string path = dir.Combine("writer.lock");
            using var holder = HoldWithPython(path, 0.8);
            var ex = Assert.Throws<BmadGuardException>(() => StoreLock.Acquire(path, TimeSpan.FromMilliseconds(200)));
            Assert.Equal(ErrorCodes.LockTimeout, ex.Code);
            Assert.Equal(path, ex.Path);

            // The timed-out waiter is still blocked in flock behind the holder; when the holder goes it takes the
            // lock and must let go at once, so a later writer is not locked out by a caller that gave up.
            holder.WaitForExit(5000);
            for (int i = 0; i < 3; i++)
            {
                using var again = StoreLock.Acquire(path, TimeSpan.FromSeconds(5));
                again.BumpEpoch();
                Assert.Equal(i + 1, again.ReadEpoch());
            }
        }

        [Fact]
        public void Cancellation_stops_a_waiting_acquire()
        {
            using var dir = new TempDir();
            string path = dir.Combine("writer.lock");
            using var holder = HoldWithPython(path, 3);
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            Assert.ThrowsAny<OperationCanceledException>(() => StoreLock.Acquire(path, TimeSpan.FromSeconds(30), cts.Token));
            holder.Kill();
        }
    }
}
