using System;
using System.Diagnostics;
using System.IO;
using System.Threading;

namespace BmadGuard.Core.Storage
{
    /// <summary>
    /// The writers' lock: an OS lock on a lock file, held for one publish (or repair, restore…).
    /// <para>
    /// Opening the file with <see cref="FileShare.None"/> is flock(LOCK_EX|LOCK_NB) on Unix and an exclusive
    /// share mode on Windows. Either way the OS drops the lock when the holder's process dies, so a killed
    /// writer never blocks a later one, and a leftover lock file means nothing. On Linux this is the same
    /// lock as Python's <c>fcntl.flock(f, fcntl.LOCK_EX)</c>, which the legacy agents take on
    /// <c>&lt;file&gt;.lock</c>. The file holds only the writer epoch (see <see cref="ReadEpoch"/>).
    /// </para>
    /// </summary>
    public sealed class StoreLock : IDisposable
    {
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

        private FileStream? _stream;

        private StoreLock(FileStream stream, string path)
        {
            _stream = stream;
            Path = path;
        }

        public string Path { get; }

        public static StoreLock Acquire(string lockPath, TimeSpan timeout, CancellationToken cancellationToken = default)
        {
            var clock = Stopwatch.StartNew();
            int attempt = 0;
            while (true)
            {
                FileStream? stream = TryOpen(lockPath);
                if (stream != null)
                {
                    return new StoreLock(stream, lockPath);
                }

                if (clock.Elapsed >= timeout)
                {
                    throw new BmadGuardException(ErrorCodes.LockTimeout, FailureKind.StoreProblem,
                        $"Timed out after {timeout.TotalSeconds:0.###} s waiting for the writers' lock '{lockPath}'. " +
                        "Another BmadGuard process or agent is holding it; retry, or raise the timeout.", lockPath);
                }

                cancellationToken.ThrowIfCancellationRequested();
                // Back off from 1 ms to at most 4 ms, with jitter. Holds are short (one fsync, a few ms), and a
                // polling waiter only wins if it looks soon after a release: with a 20 ms cap the bench measured
                // 4 contending publishers starving one another for up to 4.8 s (the releasing process kept
                // winning the lock back). Polling every few ms costs a waiter next to no CPU.
                int delay = Math.Min(4, 1 << Math.Min(attempt, 2)) + ThreadSafeRandom.Next(0, 2);
                attempt++;
                if (cancellationToken.WaitHandle.WaitOne(delay))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }
            }
        }

        private static FileStream? TryOpen(string lockPath)
        {
            try
            {
#if NET8_0_OR_GREATER
                var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 0 };
                if (!OperatingSystem.IsWindows())
                {
                    options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                }

                return new FileStream(lockPath, options);
#else
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1);
#endif
            }
            catch (IOException) when (File.Exists(lockPath))
            {
                return null; // held by someone else
            }
            catch (UnauthorizedAccessException) when (File.Exists(lockPath))
            {
                return null; // Windows reports some sharing violations this way
            }
        }

        /// <summary>
        /// The store's writer epoch, kept in the lock file and read through the held handle. Whatever swaps
        /// segment files behind other processes' backs (restore, repair) bumps it, so a writer that cached an
        /// open segment handle knows to look again instead of appending to a file that is no longer the log.
        /// </summary>
        public long ReadEpoch()
        {
            var s = _stream ?? throw new ObjectDisposedException(nameof(StoreLock));
            s.Position = 0;
            byte[] buffer = new byte[32];
            int n = s.Read(buffer, 0, buffer.Length);
            long epoch = 0;
            for (int i = 0; i < n && buffer[i] >= (byte)'0' && buffer[i] <= (byte)'9'; i++)
            {
                epoch = (epoch * 10) + (buffer[i] - '0');
            }

            return epoch;
        }

        /// <summary>Bumps the writer epoch (call while holding the lock, before replacing any segment file).</summary>
        public void BumpEpoch()
        {
            var s = _stream ?? throw new ObjectDisposedException(nameof(StoreLock));
            byte[] bytes = System.Text.Encoding.ASCII.GetBytes((ReadEpoch() + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n");
            s.Position = 0;
            s.Write(bytes, 0, bytes.Length);
            s.SetLength(bytes.Length);
            // No fsync: the epoch only invalidates caches of processes that are running; after a crash none are.
        }

        public void Dispose()
        {
            var s = Interlocked.Exchange(ref _stream, null);
            s?.Dispose();
        }
    }

    internal static class ThreadSafeRandom
    {
        [ThreadStatic]
        private static Random? _random;

        public static int Next(int min, int max) => (_random ??= new Random(Guid.NewGuid().GetHashCode())).Next(min, max);
    }
}
