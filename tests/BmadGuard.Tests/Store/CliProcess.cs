using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using BmadGuard.Tests.Support;

namespace BmadGuard.Tests.Store
{
    using Cli = BmadGuard.Tests.Support.Cli;

    /// <summary>An acknowledgement line printed by <c>bmadguard publish</c>.</summary>
    public sealed record Ack(long Seq, string Id, string Marker, string Line);

    /// <summary>
    /// A running bmadguard process whose stdout is collected as raw bytes: only lines that ended in a
    /// newline count (a process killed mid-print leaves a fragment, which was never an acknowledgement).
    /// </summary>
    public sealed class CliProcess : IDisposable
    {
        private readonly Process _process;
        private readonly MemoryStream _stdout = new MemoryStream();
        private readonly StringBuilder _stderr = new StringBuilder();
        private readonly Task _stdoutPump;
        private readonly Task _stderrPump;

        private CliProcess(Process process)
        {
            _process = process;
            _stdoutPump = Task.Run(PumpStdout);
            _stderrPump = Task.Run(async () =>
            {
                string? line;
                while ((line = await _process.StandardError.ReadLineAsync()) != null)
                {
                    lock (_stderr)
                    {
                        _stderr.AppendLine(line);
                    }
                }
            });
        }

        public static CliProcess Start(bool stdin, params string[] args) => new CliProcess(Process.Start(Cli.StartInfo(args, stdin))!);

        /// <summary>Collects the output of a process started elsewhere (with redirected stdout and stderr).</summary>
        public static CliProcess Wrap(Process process) => new CliProcess(process);

        public Process Process => _process;

        public StreamWriter StdIn => _process.StandardInput;

        public bool Killed { get; private set; }

        private void PumpStdout()
        {
            var stream = _process.StandardOutput.BaseStream;
            byte[] buffer = new byte[8192];
            int n;
            while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                lock (_stdout)
                {
                    _stdout.Write(buffer, 0, n);
                }
            }
        }

        /// <summary>kill -9.</summary>
        public void Kill()
        {
            try
            {
                _process.Kill(entireProcessTree: false); // SIGKILL on Unix
                Killed = true;
            }
            catch (InvalidOperationException)
            {
                // already exited
            }
        }

        /// <summary>Waits for the process to end and for its output to be drained.</summary>
        public int Wait(int timeoutMs = 120_000)
        {
            if (!_process.WaitForExit(timeoutMs))
            {
                _process.Kill(true);
                throw new TimeoutException("bmadguard did not finish in time");
            }

            _stdoutPump.Wait(timeoutMs);
            _stderrPump.Wait(timeoutMs);
            return _process.ExitCode;
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

        /// <summary>Complete (newline-terminated) stdout lines.</summary>
        public List<string> Lines()
        {
            byte[] bytes;
            lock (_stdout)
            {
                bytes = _stdout.ToArray();
            }

            var lines = new List<string>();
            int start = 0;
            int nl;
            while ((nl = Array.IndexOf(bytes, (byte)'\n', start)) >= 0)
            {
                lines.Add(Encoding.UTF8.GetString(bytes, start, nl - start));
                start = nl + 1;
            }

            return lines;
        }

        public List<Ack> Acks()
        {
            var acks = new List<Ack>();
            foreach (string line in Lines())
            {
                acks.Add(ParseAck(line));
            }

            return acks;
        }

        public static Ack ParseAck(string line)
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            return new Ack(r.GetProperty("seq").GetInt64(), r.GetProperty("id").GetString()!,
                r.GetProperty("data").GetProperty("marker").GetString()!, line);
        }

        public void Dispose()
        {
            try
            {
                if (!_process.HasExited)
                {
                    _process.Kill(true);
                }
            }
            catch (InvalidOperationException)
            {
            }

            _process.Dispose();
        }
    }
}
