using System.IO;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Legacy
{
    /// <summary>
    /// Detects a legacy bus whose writers delete (or replace) <c>&lt;file&gt;.lock</c>. Such a lock excludes no one:
    /// a waiter wakes holding a lock on an unlinked file while the next writer creates and locks a new one, and both
    /// rewrite the file from what they read. BmadGuard never deletes a lock file, so the lock file's identity
    /// changing or vanishing is the other writers' doing.
    /// </summary>
    public static class LegacyLocking
    {
        /// <summary>
        /// Null when nothing was seen; else what was seen. <paramref name="held"/>: the lock just taken (or held);
        /// <paramref name="fileExisted"/>: whether the bus file existed when it was taken.
        /// </summary>
        public static string? Evidence(string file, StoreLock held, bool fileExisted, bool checkOnlyPath = false)
        {
            string? seen = Observe(file, held, fileExisted, checkOnlyPath);
            if (seen != null)
            {
                Remember(file, seen);
                return seen;
            }

            // Sticky: a bus seen deleting its lock file once does it at every publish, and the next deletion can fall
            // where no single acquire sees it (a stale writer holding the unlinked file while we hold the new one).
            // So every later publish refuses too, until an operator who fixed the bus removes the marker.
            string marker = MarkerPath(file);
            return File.Exists(marker)
                ? $"it was seen before and recorded in '{marker}' (remove that file once the bus keeps its lock file)"
                : null;
        }

        /// <summary>Where a seen lock deletion is remembered: <c>&lt;file&gt;.bmadguard-lock-deleted</c>.</summary>
        public static string MarkerPath(string file) => file + ".bmadguard-lock-deleted";

        private static void Remember(string file, string evidence)
        {
            try
            {
                string marker = MarkerPath(file);
                StoreFs.RefuseLink(marker);
                if (!File.Exists(marker))
                {
                    File.WriteAllText(marker, System.DateTime.UtcNow.ToString("o", System.Globalization.CultureInfo.InvariantCulture) + " " + evidence + "\n");
#if NET8_0_OR_GREATER
                    if (!System.OperatingSystem.IsWindows())
                    {
                        File.SetUnixFileMode(marker, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                    }
#endif
                }
            }
            catch (IOException)
            {
                // The refusal itself still stands; only its memory for later publishes is lost.
            }
        }

        private static string? Observe(string file, StoreLock held, bool fileExisted, bool checkOnlyPath)
        {
            string lockPath = LegacyFiles.LockPath(file);
            if (!held.StillAtPath())
            {
                return $"the lock file '{lockPath}' was deleted or replaced while BmadGuard held it";
            }

            if (checkOnlyPath)
            {
                return null;
            }

            if (held.LockFileReplaced > 0)
            {
                return $"the lock file '{lockPath}' was deleted or replaced {held.LockFileReplaced} time(s) while BmadGuard waited for it";
            }

            if (held.CreatedLockFile && fileExisted && WrittenBefore(file))
            {
                return $"the lock file '{lockPath}' was missing although BmadGuard wrote '{file}' before (it keeps its lock file), so something deleted it";
            }

            return null;
        }

        /// <summary>BmadGuard wrote this file before (it left backup generations): the lock file existed then.</summary>
        public static bool WrittenBefore(string file) => LegacyBusFile.ListGenerations(file).Count > 0;

        /// <summary>
        /// The lock file is missing although BmadGuard wrote the file before (an observation without taking the lock,
        /// for verify, health and the monitor). Null when nothing is wrong.
        /// </summary>
        public static string? MissingLockEvidence(string file)
        {
            string lockPath = LegacyFiles.LockPath(file);
            if (File.Exists(MarkerPath(file)))
            {
                return $"a publish saw it earlier and recorded it in '{MarkerPath(file)}' (remove that file once the bus keeps its lock file)";
            }

            if (File.Exists(file) && !File.Exists(lockPath) && WrittenBefore(file))
            {
                return $"the lock file '{lockPath}' is missing although BmadGuard wrote '{file}' before (it keeps its lock file), so something deleted it";
            }

            return null;
        }

        /// <summary>The problem, for messages: why it matters (front ends add what to do).</summary>
        public static string Explain(string file, string evidence)
            => $"The writers of '{file}' delete or replace its lock file: {evidence}. A lock file that is deleted after use excludes no one: "
               + "two writers can each hold a lock on a different file and one overwrites the other's events.";

        internal static void RefuseIfLockFileDeleted(string file, StoreLock held, bool fileExisted, string consequence, bool checkOnlyPath = false)
        {
            string? evidence = Evidence(file, held, fileExisted, checkOnlyPath);
            if (evidence != null)
            {
                throw new BmadGuardException(ErrorCodes.LegacyLockFileDeleted, FailureKind.StoreProblem,
                    Explain(file, evidence) + " BmadGuard refuses to write where it cannot keep the event; " + consequence + ".", file);
            }
        }
    }
}
