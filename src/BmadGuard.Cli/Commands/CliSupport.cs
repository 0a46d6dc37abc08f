using System;
using System.CommandLine;
using System.IO;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core;
using BmadGuard.Core.Storage;

namespace BmadGuard.Cli
{
    /// <summary>What every command shares: the --store option, error reporting and exit codes, JSON output.</summary>
    internal static class CliSupport
    {
        public static Option<string?> StoreOption() => new Option<string?>("--store")
        {
            Description = $"The store directory (default: ${StorePaths.EnvironmentVariable}, else {StorePaths.DefaultStore()}).",
        };

        public static string ResolveStore(string? store) => Path.GetFullPath(string.IsNullOrWhiteSpace(store) ? StorePaths.DefaultStore() : store!);

        /// <summary>Runs a command body, turning failures into one stderr line and the contract's exit code.</summary>
        public static int Run(Func<int> body)
        {
            try
            {
                return body();
            }
            catch (BmadGuardException ex)
            {
                Console.Error.WriteLine($"bmadguard: {ex.Code}: {ex.Message}{Advice(ex)}");
                return ex.Kind == FailureKind.InvalidInput ? ExitCodes.Usage : ExitCodes.StoreProblem;
            }
            catch (OperationCanceledException)
            {
                return ExitCodes.Success;
            }
            catch (IOException ex)
            {
                // The one mapping (StoreFs): a full disk is StoreFull whichever command hit it.
                Console.Error.WriteLine($"bmadguard: {(StoreFs.IsDiskFull(ex) ? ErrorCodes.StoreFull : ErrorCodes.StoreIOError)}: {ex.Message}");
                return ExitCodes.StoreProblem;
            }
            catch (UnauthorizedAccessException ex)
            {
                Console.Error.WriteLine($"bmadguard: AccessDenied: {ex.Message}");
                return ExitCodes.StoreProblem;
            }
            catch (Exception ex) when (!(ex is OutOfMemoryException))
            {
                // Bad input is always a BmadGuardException (exit 2); anything reaching here is a bug. Still one line,
                // never a stack trace on a user's terminal unless asked for.
                bool debug = Environment.GetEnvironmentVariable("BMADGUARD_DEBUG") == "1";
                Console.Error.WriteLine($"bmadguard: InternalError: {ex.GetType().Name}: {ex.Message} (a bug in bmadguard: please report it{(debug ? "" : "; BMADGUARD_DEBUG=1 prints the stack trace")})");
                if (debug)
                {
                    Console.Error.WriteLine(ex.ToString());
                }

                return ExitCodes.StoreProblem;
            }
        }

        /// <summary>
        /// Refuses a command-line argument that was not valid UTF-8. On Unix the runtime decodes argv leniently,
        /// turning a 0xFF byte into U+FFFD before we see it; the raw bytes are still in /proc/self/cmdline. (On
        /// Windows, arguments are UTF-16, and an unpaired surrogate is refused when the event is prepared.)
        /// </summary>
        public static void ThrowIfArgumentNotUtf8(string? value, string option)
        {
            if (value == null || value.IndexOf('\uFFFD') < 0 || !OperatingSystem.IsLinux())
            {
                return;
            }

            byte[] cmdline;
            try
            {
                cmdline = File.ReadAllBytes("/proc/self/cmdline");
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                return;
            }

            var strict = new System.Text.UTF8Encoding(false, true);
            int start = 0;
            for (int i = 0; i <= cmdline.Length; i++)
            {
                if (i < cmdline.Length && cmdline[i] != 0)
                {
                    continue;
                }

                var raw = new ReadOnlySpan<byte>(cmdline, start, i - start);
                start = i + 1;
                if (System.Text.Encoding.UTF8.GetString(raw) != value)
                {
                    continue;
                }

                try
                {
                    strict.GetCharCount(raw);
                }
                catch (System.Text.DecoderFallbackException ex)
                {
                    throw new BmadGuardException(ErrorCodes.InvalidUtf8, FailureKind.InvalidInput,
                        $"{option} is not valid UTF-8 (first bad byte at offset {ex.Index}); it was not stored, because storing it would replace that byte with U+FFFD.");
                }
            }
        }

        /// <summary>
        /// What to run next, in the CLI's own commands: Core's messages describe the problem only, and each front end
        /// (this one, the PowerShell cmdlets) names its own commands.
        /// </summary>
        public static string Advice(BmadGuardException ex)
        {
            string store = ex.Path ?? "DIR";
            switch (ex.Code)
            {
                case ErrorCodes.StoreNotFound:
                    return $" Create one with 'bmadguard init --store {store}'.";
                case ErrorCodes.StoreDamaged:
                    return " Run 'bmadguard verify --store DIR' for a full report, then 'bmadguard repair --store DIR' or 'bmadguard restore --store DIR'.";
                case ErrorCodes.MonitorAlreadyRunning:
                    return " See 'bmadguard monitor --status --store DIR'.";
                default:
                    return string.Empty;
            }
        }

        /// <summary>Prints the store's notices on stderr, skipping the first <paramref name="skip"/> (already printed).</summary>
        public static void PrintNotices(IEventStore store, int skip = 0)
        {
            foreach (var notice in System.Linq.Enumerable.Skip(store.Notices, skip))
            {
                Console.Error.WriteLine($"bmadguard: notice: {notice.Code}: {notice.Message}");
            }
        }

        /// <summary>Cancels on Ctrl+C and SIGTERM (and SIGQUIT with <paramref name="includeQuit"/>, the monitor) so --follow and long commands stop cleanly.</summary>
        public static SignalCancellation CancelOnSignal(bool includeQuit = false) => new SignalCancellation(includeQuit);

        public static Stream StdOut() => Console.OpenStandardOutput();

        public static Utf8JsonWriter JsonWriter(Stream stream, bool indented = false)
            => new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    /// <summary>A cancellation source tripped by SIGINT (Ctrl+C) and SIGTERM; the signal does not kill the process.</summary>
    internal sealed class SignalCancellation : IDisposable
    {
        private readonly CancellationTokenSource _cts = new CancellationTokenSource();
        private readonly System.Runtime.InteropServices.PosixSignalRegistration _int;
        private readonly System.Runtime.InteropServices.PosixSignalRegistration _term;
        private readonly System.Runtime.InteropServices.PosixSignalRegistration? _quit;

        public SignalCancellation(bool includeQuit = false)
        {
            _int = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, OnSignal);
            _term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, OnSignal);
            if (includeQuit)
            {
                _quit = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGQUIT, OnSignal);
            }
        }

        public CancellationToken Token => _cts.Token;

        private void OnSignal(System.Runtime.InteropServices.PosixSignalContext context)
        {
            context.Cancel = true;
            _cts.Cancel();
        }

        public void Dispose()
        {
            _int.Dispose();
            _term.Dispose();
            _quit?.Dispose();
            _cts.Dispose();
        }
    }
}
