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
    /// <para>
    /// On Linux and macOS (net8.0) a contended acquire polls for at most 50 ms; after that a helper thread
    /// waits in a blocking flock(LOCK_EX), so the kernel hands the lock over the moment it is released
    /// (polling alone let the releasing process keep winning it back: starvation for seconds under load). When the timeout runs out the waiter is
    /// abandoned: if it ever gets the lock it closes its descriptor at once, which releases it.
    /// </para>
    /// </summary>
    public sealed class StoreLock : IDisposable
    {
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

        private FileStream? _stream;

        private StoreLock(FileStream stream, string path, int replaced = 0, bool created = false)
        {
            _stream = stream;
            Path = path;
            LockFileReplaced = replaced;
            CreatedLockFile = created;
        }

        public string Path { get; }

        /// <summary>
        /// How many times the acquire found the file it had locked no longer at the path (deleted or replaced by
        /// someone else) and started over. BmadGuard never deletes a lock file: anything above 0 means another
        /// writer does, and then the lock excludes no one.
        /// </summary>
        public int LockFileReplaced { get; }

        /// <summary>True when this acquire created the lock file (it did not exist).</summary>
        public bool CreatedLockFile { get; }

        /// <summary>
        /// True when the locked file is still the one at <see cref="Path"/> (same device and inode). False means
        /// someone deleted or replaced the lock file while it was held. Always true where this cannot be checked.
        /// </summary>
        public bool StillAtPath()
        {
            var s = _stream ?? throw new ObjectDisposedException(nameof(StoreLock));
            return FileIdentity.SameFile(s.SafeFileHandle, Path);
        }

        public static StoreLock Acquire(string lockPath, TimeSpan timeout, CancellationToken cancellationToken = default)
        {
            // A lock file planted as a link would have the epoch bump ("1\n") written through it into whatever it
            // points at: refuse it (StoreFs). The file is otherwise created O_CREAT|O_EXCL, owner-only.
            StoreFs.RefuseLink(lockPath);
            var clock = Stopwatch.StartNew();
#if NET8_0_OR_GREATER
            if (UnixFlock.Supported)
            {
                FileStream? held = UnixFlock.Acquire(lockPath, timeout, cancellationToken, out int replaced, out bool created);
                if (held != null)
                {
                    return new StoreLock(held, lockPath, replaced, created);
                }

                throw Timeout(lockPath, timeout);
            }
#endif
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
                    throw Timeout(lockPath, timeout);
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

        private static BmadGuardException Timeout(string lockPath, TimeSpan timeout)
            => new BmadGuardException(ErrorCodes.LockTimeout, FailureKind.StoreProblem,
                $"Timed out after {timeout.TotalSeconds:0.###} s waiting for the writers' lock '{lockPath}'. " +
                "Another BmadGuard process or agent is holding it; retry, or raise the timeout.", lockPath);

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

        /// <summary>
        /// The writer epoch read without taking the lock (readers take none): null when the file cannot be read (on
        /// Windows the holder shares it with nobody). A read racing a bump may see a torn value; callers only compare it
        /// with the previous one, and a false "changed" costs a re-read by seq, never a skipped event.
        /// </summary>
        public static long? PeekEpoch(string lockPath)
        {
            try
            {
                using var s = new FileStream(lockPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
                byte[] buffer = new byte[32];
                int n = s.Read(buffer, 0, buffer.Length);
                long epoch = 0;
                for (int i = 0; i < n && buffer[i] >= (byte)'0' && buffer[i] <= (byte)'9'; i++)
                {
                    epoch = (epoch * 10) + (buffer[i] - '0');
                }

                return epoch;
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                return null;
            }
        }

        /// <summary>Bumps the writer epoch (call while holding the lock, before replacing any segment file).</summary>
        public void BumpEpoch()
        {
            var s = _stream ?? throw new ObjectDisposedException(nameof(StoreLock));
            byte[] bytes = System.Text.Encoding.ASCII.GetBytes((ReadEpoch() + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n");
            s.Position = 0;
            s.Write(bytes, 0, bytes.Length);
            s.SetLength(bytes.Length);
            // fsync: running writers only need the new value in the page cache, but the monitor's high-water mark and
            // verify's StoreBehindBackup check compare epochs across a power cut: a restore whose bump was lost would
            // look like the newest events vanished. Restores and repairs are rare, so this costs nothing that matters.
            s.Flush();
            if (s is FileStream fs)
            {
                fs.Flush(true);
            }
        }

        public void Dispose()
        {
            var s = Interlocked.Exchange(ref _stream, null);
            s?.Dispose();
        }
    }

#if NET8_0_OR_GREATER
    /// <summary>flock(2) on a descriptor of our own (.NET's FileStream only ever tries LOCK_NB).</summary>
    internal static class UnixFlock
    {
        private const int LockEx = 2;
        private const int LockNb = 4;
        private const int ORdWr = 2;
        private const int EIntr = 4;
        private const int ENoEnt = 2;

        public static bool Supported { get; } = OperatingSystem.IsLinux() || OperatingSystem.IsMacOS();

        /// <summary>How long a contended acquire polls before it waits in a blocking flock.</summary>
        private static readonly TimeSpan PollPhase = TimeSpan.FromMilliseconds(50);

        private static int OCloExec => OperatingSystem.IsMacOS() ? 0x1000000 : 0x80000;

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "open", SetLastError = true)]
        private static extern int Open(string path, int flags);

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "flock", SetLastError = true)]
        private static extern int Flock(int fd, int operation);

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "close", SetLastError = true)]
        private static extern int Close(int fd);

        /// <summary>
        /// The held lock as a FileStream (for the epoch), or null when the timeout ran out.
        /// <para>
        /// After flock succeeds, the locked file must still be the one at the path (fstat of the descriptor against
        /// stat of the path, device and inode): a holder that deletes or replaces the lock file after LOCK_UN (the
        /// old agents' bus does) leaves waiters holding a lock on a file nobody else will ever open again. Then the
        /// descriptor is closed and the lock file opened afresh, until the timeout. Each such retry is counted in
        /// <paramref name="replaced"/>; <paramref name="created"/> is true when this call created the lock file.
        /// </para>
        /// </summary>
        public static FileStream? Acquire(string lockPath, TimeSpan timeout, CancellationToken cancellationToken, out int replaced, out bool created)
        {
            var clock = Stopwatch.StartNew();
            replaced = 0;
            created = false;
            while (true)
            {
                int fd = OpenLockFile(lockPath, timeout - clock.Elapsed, cancellationToken, ref created);
                if (fd < 0)
                {
                    return null;
                }

                if (!LockDescriptor(fd, lockPath, clock, timeout, cancellationToken))
                {
                    return null; // the descriptor is closed (or owned by an abandoned waiter)
                }

                if (FileIdentity.SameFile(fd, lockPath))
                {
                    return Wrap(fd);
                }

                // The file we locked was unlinked or replaced while we waited: the lock excludes no one. Look again.
                Close(fd);
                replaced++;
                if (clock.Elapsed >= timeout)
                {
                    return null;
                }
            }
        }

        /// <summary>Acquire without the observations.</summary>
        public static FileStream? Acquire(string lockPath, TimeSpan timeout, CancellationToken cancellationToken)
            => Acquire(lockPath, timeout, cancellationToken, out _, out _);

        /// <summary>flock(LOCK_EX) on <paramref name="fd"/> within the timeout; false (descriptor released) when it ran out.</summary>
        private static bool LockDescriptor(int fd, string lockPath, Stopwatch clock, TimeSpan timeout, CancellationToken cancellationToken)
        {
            var pollStart = clock.Elapsed;
            int attempt = 0;
            // First poll for a short while, as every platform does (cheap, and the common case: holds last one
            // fsync); only a waiter still waiting after that goes to a blocking flock, so no one starves.
            while (clock.Elapsed - pollStart < PollPhase && clock.Elapsed < timeout)
            {
                if (Flock(fd, LockEx | LockNb) == 0)
                {
                    return true;
                }

                int delay = Math.Min(4, 1 << Math.Min(attempt++, 2)) + ThreadSafeRandom.Next(0, 2);
                if (cancellationToken.WaitHandle.WaitOne(delay))
                {
                    Close(fd);
                    cancellationToken.ThrowIfCancellationRequested();
                }
            }

            if (Flock(fd, LockEx | LockNb) == 0)
            {
                return true;
            }

            var remaining = timeout - clock.Elapsed;
            if (remaining <= TimeSpan.Zero)
            {
                Close(fd);
                return false;
            }

            var waiter = new Waiter(fd);
            var thread = new Thread(waiter.Run) { IsBackground = true, Name = "BmadGuard lock waiter" };
            thread.Start();
            WaitHandle.WaitAny(new[] { waiter.Done, cancellationToken.WaitHandle }, remaining);
            if (waiter.TryAbandon())
            {
                // The waiter now owns the descriptor and closes it if it ever gets the lock.
                cancellationToken.ThrowIfCancellationRequested();
                return false;
            }

            // The waiter finished (perhaps in the same instant as the timeout): the lock is ours, or flock failed.
            waiter.Done.WaitOne();
            if (waiter.Errno != 0)
            {
                Close(fd);
                throw new IOException($"flock on '{lockPath}' failed (errno {waiter.Errno}).");
            }

            return true;
        }

        /// <summary>
        /// Opens the lock file read-write, creating it owner-only (0600) when it is missing. Never "check, then open":
        /// open(O_RDWR) first; on ENOENT create it with O_CREAT|O_EXCL (FileMode.CreateNew); if someone else created
        /// it in between, or deleted it again, open again. -1 when the timeout ran out.
        /// </summary>
        private static int OpenLockFile(string lockPath, TimeSpan timeout, CancellationToken cancellationToken, ref bool created)
        {
            var clock = Stopwatch.StartNew();
            for (int tries = 1; ; tries++)
            {
                int fd = Open(lockPath, ORdWr | OCloExec);
                if (fd >= 0)
                {
                    return fd;
                }

                int errno = System.Runtime.InteropServices.Marshal.GetLastWin32Error();
                if (errno != ENoEnt)
                {
                    throw new IOException($"Cannot open the lock file '{lockPath}' (errno {errno}).");
                }

                try
                {
                    // O_CREAT|O_EXCL with mode 0600: nobody can hold a lock on a file that did not exist a moment ago.
                    new FileStream(lockPath, new FileStreamOptions
                    {
                        Mode = FileMode.CreateNew,
                        Access = FileAccess.Write,
                        Share = FileShare.ReadWrite,
                        UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                    }).Dispose();
                    created = true;
                }
                catch (DirectoryNotFoundException)
                {
                    throw;
                }
                catch (IOException)
                {
                    // Another process created it first (and may have deleted it again since): open again.
                }

                if (tries >= 3 && clock.Elapsed >= timeout)
                {
                    return -1;
                }

                cancellationToken.ThrowIfCancellationRequested();
            }
        }

        private static FileStream Wrap(int fd)
            => new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle((IntPtr)fd, ownsHandle: true), FileAccess.ReadWrite, 1);

        private sealed class Waiter
        {
            private const int Waiting = 0;
            private const int Finished = 1;
            private const int Abandoned = 2;
            private readonly int _fd;
            private int _state;

            public Waiter(int fd) => _fd = fd;

            public ManualResetEvent Done { get; } = new ManualResetEvent(false);

            public int Errno { get; private set; }

            public void Run()
            {
                int rc;
                while ((rc = Flock(_fd, LockEx)) != 0 && System.Runtime.InteropServices.Marshal.GetLastWin32Error() == EIntr)
                {
                }

                Errno = rc == 0 ? 0 : System.Runtime.InteropServices.Marshal.GetLastWin32Error();
                if (Interlocked.CompareExchange(ref _state, Finished, Waiting) == Abandoned)
                {
                    Close(_fd); // nobody wants it any more: closing releases the lock at once
                    return;
                }

                Done.Set();
            }

            public bool TryAbandon() => Interlocked.CompareExchange(ref _state, Abandoned, Waiting) == Waiting;
        }
    }
#endif

    internal static class ThreadSafeRandom
    {
        [ThreadStatic]
        private static Random? _random;

        public static int Next(int min, int max) => (_random ??= new Random(Guid.NewGuid().GetHashCode())).Next(min, max);
    }
}
