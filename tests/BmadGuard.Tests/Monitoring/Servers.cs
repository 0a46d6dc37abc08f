using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace BmadGuard.Tests.Monitoring
{
    /// <summary>A real HTTP server on 127.0.0.1 (HttpListener) that records what it receives.</summary>
    public sealed class HttpSink : IDisposable
    {
        private readonly HttpListener _listener = new HttpListener();
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private readonly Task _loop;

        public sealed record Received(string Path, string Body, DateTimeOffset At);

        public HttpSink()
        {
            Port = FreePort();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            _listener.Start();
            _loop = Task.Run(Loop);
        }

        public int Port { get; }

        /// <summary>The HTTP status to answer with (200 by default; 500 to simulate a broken endpoint).</summary>
        public int Status { get; set; } = 200;

        /// <summary>How long to wait before answering (a slow server).</summary>
        public TimeSpan Delay { get; set; } = TimeSpan.Zero;

        public ConcurrentQueue<Received> Requests { get; } = new ConcurrentQueue<Received>();

        public int Attempts;

        public string Url(string path) => $"http://127.0.0.1:{Port}{path}";

        private async Task Loop()
        {
            while (!_stop.IsCancellationRequested)
            {
                HttpListenerContext ctx;
                try
                {
                    ctx = await _listener.GetContextAsync().ConfigureAwait(false);
                }
                catch (Exception) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                catch (HttpListenerException)
                {
                    return;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }

                _ = Task.Run(async () =>
                {
                    Interlocked.Increment(ref Attempts);
                    string body;
                    using (var r = new StreamReader(ctx.Request.InputStream, Encoding.UTF8))
                    {
                        body = await r.ReadToEndAsync().ConfigureAwait(false);
                    }

                    if (Delay > TimeSpan.Zero)
                    {
                        try
                        {
                            await Task.Delay(Delay, _stop.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException)
                        {
                        }
                    }

                    int status = Status;
                    if (status == 200)
                    {
                        Requests.Enqueue(new Received(ctx.Request.Url!.AbsolutePath, body, DateTimeOffset.UtcNow));
                    }

                    try
                    {
                        ctx.Response.StatusCode = status;
                        ctx.Response.Close();
                    }
                    catch (Exception)
                    {
                    }
                });
            }
        }

        public bool WaitFor(Func<Received, bool> predicate, TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < timeout)
            {
                if (Requests.Any(predicate))
                {
                    return true;
                }

                Thread.Sleep(50);
            }

            return Requests.Any(predicate);
        }

        public static int FreePort()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        public void Dispose()
        {
            _stop.Cancel();
            try
            {
                _listener.Stop();
                _listener.Close();
            }
            catch (Exception)
            {
            }
        }
    }

    /// <summary>
    /// A real SMTP server on 127.0.0.1: Debian's python3-aiosmtpd (installed by .ci/run), with a handler that
    /// writes each message to a file and an authenticator that accepts one user/password (AUTH without TLS,
    /// allowed on loopback for the test).
    /// </summary>
    public sealed class SmtpSink : IDisposable
    {
        private const string Script = @"
import sys, os, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
port, outdir, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
class Handler:
    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(outdir, '%d.eml' % time.time_ns())
        with open(name + '.tmp', 'wb') as f:
            f.write(b'X-Auth-User: ' + str(session.authenticated).encode() + b'\r\n')
            f.write(envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode())
        os.rename(name + '.tmp', name)
        return '250 OK'
    # .NET's SmtpClient sends the mechanism in lower case ('AUTH login <b64>'); aiosmtpd 1.4 matches it
    # case-sensitively, so the lower-case name is registered here too (same LOGIN exchange, RFC 4616 style).
    async def auth_login(self, server, args):
        import base64
        user = base64.b64decode(args[1]) if len(args) > 1 else await server.challenge_auth('Username:')
        pw = await server.challenge_auth('Password:')
        ok = user.decode() == sys.argv[3] and pw.decode() == sys.argv[4]
        return AuthResult(success=ok, handled=False)
def auth(server, session, envelope, mechanism, data):
    ok = data.login.decode() == user and data.password.decode() == password
    return AuthResult(success=ok)
c = Controller(Handler(), hostname='127.0.0.1', port=port, authenticator=auth, auth_require_tls=False)
c.start()
print('READY', flush=True)
sys.stdin.read()
c.stop()
";

        private readonly Process _process;

        public const string Python = "/usr/bin/python3";

        public SmtpSink(string directory, string user = "alerts", string password = "smtp-Pa55-secret-XYZ")
        {
            Directory = directory;
            System.IO.Directory.CreateDirectory(directory);
            Port = HttpSink.FreePort();
            string script = Path.Combine(directory, "..", "smtp_sink.py");
            File.WriteAllText(script, Script);
            var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
            psi.ArgumentList.Add(script);
            psi.ArgumentList.Add(Port.ToString());
            psi.ArgumentList.Add(directory);
            psi.ArgumentList.Add(user);
            psi.ArgumentList.Add(password);
            _process = Process.Start(psi)!;
            var ready = _process.StandardOutput.ReadLineAsync();
            if (!ready.Wait(TimeSpan.FromSeconds(20)) || ready.Result != "READY")
            {
                string err = _process.HasExited ? _process.StandardError.ReadToEnd() : "(no answer in 20 s)";
                Dispose();
                throw new InvalidOperationException($"The SMTP test server did not start: {err}. Install python3-aiosmtpd (apt-get install -y python3-aiosmtpd).");
            }
        }

        public string Directory { get; }
        public int Port { get; }

        public IReadOnlyList<string> Messages()
            => System.IO.Directory.GetFiles(Directory, "*.eml").OrderBy(f => f).Select(File.ReadAllText).ToList();

        public bool WaitFor(Func<string, bool> predicate, TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < timeout)
            {
                if (Messages().Any(predicate))
                {
                    return true;
                }

                Thread.Sleep(100);
            }

            return Messages().Any(predicate);
        }

        public void Dispose()
        {
            try
            {
                _process.StandardInput.Close();
                if (!_process.WaitForExit(5000))
                {
                    _process.Kill(true);
                }
            }
            catch (Exception)
            {
            }

            _process.Dispose();
        }
    }
}
