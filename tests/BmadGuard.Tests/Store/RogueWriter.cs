using System;
using System.Diagnostics;
using System.IO;
using System.Threading;

namespace BmadGuard.Tests.Store
{
    /// <summary>
    /// A foreign writer in Python that follows docs/store-format.md: flock(LOCK_EX) on writer.lock, append to
    /// the last segment. It appends a fragment (part of a record) and then sleeps holding the lock, to be killed.
    /// </summary>
    public sealed class RogueWriter : IDisposable
    {
        private const string Script = @"
import fcntl, glob, os, sys, time
store, fragment = sys.argv[1], bytes.fromhex(sys.argv[2])
lock = open(os.path.join(store, 'writer.lock'), 'a+b')
fcntl.flock(lock, fcntl.LOCK_EX)
if len(sys.argv) > 3:
    print('locked', flush=True)
    sys.stdin.readline()  # wait for the go-ahead, holding the lock
segment = sorted(glob.glob(os.path.join(store, 'segments', 'segment-*.jsonl')))[-1]
with open(segment, 'ab') as f:
    f.write(fragment)
    f.flush()
    os.fsync(f.fileno())
print('appended', flush=True)
time.sleep(120)
";

        private readonly CliProcess _process;

        private RogueWriter(CliProcess process) => _process = process;

        /// <summary>Starts the writer; with <paramref name="waitForGo"/> it takes the lock, prints "locked" and appends only after <see cref="Go"/>.</summary>
        public static RogueWriter Start(string store, byte[] fragment, bool waitForGo = false)
        {
            var psi = new ProcessStartInfo("python3")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = waitForGo,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(Script);
            psi.ArgumentList.Add(store);
            psi.ArgumentList.Add(Convert.ToHexString(fragment));
            if (waitForGo)
            {
                psi.ArgumentList.Add("wait");
            }
            return new RogueWriter(CliProcess.Wrap(Process.Start(psi)!));
        }

        public string StdErr => _process.StdErr;

        public void Go()
        {
            _process.StdIn.WriteLine("go");
            _process.StdIn.Flush();
        }

        public bool WaitForLocked(int timeoutMs = 60_000) => WaitForLine("locked", timeoutMs);

        public bool WaitForAppended(int timeoutMs = 60_000) => WaitForLine("appended", timeoutMs);

        private bool WaitForLine(string line, int timeoutMs)
        {
            var clock = Stopwatch.StartNew();
            while (clock.ElapsedMilliseconds < timeoutMs)
            {
                if (_process.Lines().Contains(line))
                {
                    return true;
                }

                if (_process.Process.HasExited)
                {
                    return false;
                }

                Thread.Sleep(5);
            }

            return false;
        }

        public void Kill() => _process.Kill();

        public void Wait() => _process.Wait();

        public void Dispose() => _process.Dispose();
    }
}
