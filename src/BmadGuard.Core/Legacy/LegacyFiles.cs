using System;
using System.IO;

namespace BmadGuard.Core.Legacy
{
    /// <summary>Names and checks shared by everything that touches a legacy bus file.</summary>
    public static class LegacyFiles
    {
        /// <summary>Where damaged originals go: next to the file, so they stay on the same volume and with the project.</summary>
        public const string QuarantineDirName = ".bmadguard-quarantine";

        /// <summary>Where the backup generations taken before each guarded write go.</summary>
        public const string GenerationsDirName = ".bmadguard-generations";

        public const int DefaultKeepGenerations = 20;

        /// <summary>The lock the Python agents take: <c>flock(LOCK_EX)</c> on <c>&lt;file&gt;.lock</c> next to the file.</summary>
        public static string LockPath(string file) => file + ".lock";

        public static string QuarantineDir(string file) => Path.Combine(Path.GetDirectoryName(file)!, QuarantineDirName);

        public static string GenerationsDir(string file) => Path.Combine(Path.GetDirectoryName(file)!, GenerationsDirName);

        /// <summary>A sortable UTC timestamp for file names: <c>20261122T021530123456Z</c>.</summary>
        public static string FileStamp(DateTime utc) => utc.ToString("yyyyMMdd'T'HHmmssffffff'Z'", System.Globalization.CultureInfo.InvariantCulture);

        /// <summary>Full path of an existing file; a clear InvalidInput error for a missing file or a directory.</summary>
        public static string RequireFile(string path, string what = "file")
        {
            if (string.IsNullOrWhiteSpace(path))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, $"No {what} was given.");
            }

            string full = Path.GetFullPath(path);
            if (Directory.Exists(full))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                    $"'{full}' is a directory, not a {what}. Give the path of the JSON file (for a store, use --store / -Store).", full);
            }

            if (!File.Exists(full))
            {
                throw new BmadGuardException(ErrorCodes.FileNotFound, FailureKind.InvalidInput, $"The {what} '{full}' does not exist.", full);
            }

            return full;
        }

        /// <summary>How long a read-only check waits for the agents' lock before reading without it.</summary>
        public static readonly TimeSpan ReadLockTimeout = TimeSpan.FromSeconds(2);

        /// <summary>
        /// Reads a file; when <c>&lt;file&gt;.lock</c> exists (the file is a guarded bus file), under that lock, so a
        /// writer that rewrites the file in place is never seen half-way. A read never creates the lock file.
        /// <paramref name="locked"/> is false only when the lock file exists but could not be taken.
        /// </summary>
        internal static byte[] ReadGuarded(string path, out bool locked) => ReadGuarded(path, out locked, out _);

        /// <summary>
        /// As above; <paramref name="lockEvidence"/> says how the lock file was seen deleted or replaced by the file's
        /// writers (null when it was not): a lock file missing although BmadGuard wrote the file before, or one
        /// replaced while we waited for it or held it.
        /// </summary>
        internal static byte[] ReadGuarded(string path, out bool locked, out string? lockEvidence)
        {
            string lockPath = LockPath(path);
            locked = true;
            lockEvidence = null;
            if (!File.Exists(lockPath))
            {
                lockEvidence = LegacyLocking.MissingLockEvidence(path);
                return ReadAll(path);
            }

            Storage.StoreLock? held = null;
            try
            {
                held = Storage.StoreLock.Acquire(lockPath, ReadLockTimeout);
            }
            catch (BmadGuardException ex) when (ex.Code == ErrorCodes.LockTimeout)
            {
                locked = false;
            }

            using (held)
            {
                byte[] bytes = ReadAll(path);
                if (held != null)
                {
                    lockEvidence = LegacyLocking.Evidence(path, held, true);
                }

                return bytes;
            }
        }

        internal static byte[] ReadAll(string path)
        {
            try
            {
                return File.ReadAllBytes(path);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                throw new BmadGuardException(ErrorCodes.StoreIOError, FailureKind.StoreProblem, $"Cannot read '{path}': {ex.Message}", path, inner: ex);
            }
        }
    }
}
