using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Threading;
using BmadGuard.Tests.Support;

namespace BmadGuard.Tests.Monitoring
{
    /// <summary>A real <c>bmadguard monitor</c> process; its stdout JSON lines are collected as they arrive.</summary>
    public sealed class MonitorProcess : IDisposable
    {
        private readonly Process _process;
        private readonly ConcurrentQueue<JsonElement> _events = new ConcurrentQueue<JsonElement>();
        private readonly StringBuilder _stdout = new StringBuilder();
        private readonly StringBuilder _stderr = new StringBuilder();

        public MonitorProcess(params string[] args)
        {
            var psi = Support.Cli.StartInfo(new[] { "monitor" }.Concat(args));
            _process = new Process { StartInfo = psi };
            _process.OutputDataReceived += (_, e) =>
            {
                if (e.Data == null)
                {
                    return;
                }

                lock (_stdout)
                {
                    _stdout.AppendLine(e.Data);
                }

                try
                {
                    using var doc = JsonDocument.Parse(e.Data);
                    _events.Enqueue(doc.RootElement.Clone());
                }
                catch (JsonException)
                {
                }
            };
            _process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data != null)
                {
                    lock (_stderr)
                    {
                        _stderr.AppendLine(e.Data);
                    }
                }
            };
            _process.Start();
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public int Pid => _process.Id;

        public IReadOnlyList<JsonElement> Events => _events.ToList();

        public string StdOut
        {
            get
            {
                lock (_stdout)
                {
                    return _stdout.ToString();
                }
            }
        }

        public string StdErr
        {
            get
            {
                lock (_stderr)
                {
                    return _stderr.ToString();
                }
            }
        }

        public static string Kind(JsonElement e) => e.GetProperty("event").GetString()!;

        public static DateTimeOffset Time(JsonElement e) => e.GetProperty("time").GetDateTimeOffset();

        /// <summary>Waits for an event matching <paramref name="predicate"/>; null on timeout.</summary>
        public JsonElement? WaitFor(Func<JsonElement, bool> predicate, TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            while (true)
            {
                foreach (var e in _events)
                {
                    if (predicate(e))
                    {
                        return e;
                    }
                }

                if (clock.Elapsed > timeout || _process.HasExited)
                {
                    foreach (var e in _events)
                    {
                        if (predicate(e))
                        {
                            return e;
                        }
                    }

                    return null;
                }

                Thread.Sleep(20);
            }
        }

        /// <summary>Waits until the monitor has checked <paramref name="target"/> once (it is watching).</summary>
        public void WaitReady(string target)
        {
            var e = WaitFor(x => Kind(x) == "Checked" && x.GetProperty("target").GetString() == target, TimeSpan.FromSeconds(60));
            if (e == null)
            {
                throw new InvalidOperationException($"The monitor did not start checking '{target}'. stderr: {StdErr}");
            }
        }

        [DllImport("libc", SetLastError = true)]
        private static extern int kill(int pid, int sig);

        public void Signal(int signal) => kill(_process.Id, signal);

        /// <summary>kill -9.</summary>
        public void KillHard()
        {
            Signal(9);
            _process.WaitForExit(10_000);
        }

        public int WaitForExit(TimeSpan timeout)
        {
            if (!_process.WaitForExit((int)timeout.TotalMilliseconds))
            {
                throw new TimeoutException("The monitor did not exit in time.");
            }

            _process.WaitForExit(); // drain the output
            return _process.ExitCode;
        }

        public bool HasExited => _process.HasExited;

        public void Dispose()
        {
            try
            {
                if (!_process.HasExited)
                {
                    _process.Kill(true);
                    _process.WaitForExit(10_000);
                }
            }
            catch (Exception)
            {
            }

            _process.Dispose();
        }
    }
}
