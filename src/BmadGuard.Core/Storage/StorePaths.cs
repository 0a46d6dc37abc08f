using System;
using System.IO;

namespace BmadGuard.Core.Storage
{
    /// <summary>Where the default store lives, and the files inside a store directory.</summary>
    public static class StorePaths
    {
        public const string EnvironmentVariable = "BMADGUARD_STORE";
        public const string MetaFileName = "bmadguard.store.json";
        public const string SegmentsDirName = "segments";
        public const string ConsumersDirName = "consumers";
        public const string QuarantineDirName = "quarantine";
        public const string LockFileName = "writer.lock";

        /// <summary>
        /// The store used when none is named: <c>$BMADGUARD_STORE</c>, else <c>bmadguard/store</c> under the
        /// user's local application data (<c>%LOCALAPPDATA%</c> on Windows, <c>$XDG_DATA_HOME</c> or
        /// <c>~/.local/share</c> elsewhere).
        /// </summary>
        public static string DefaultStore()
        {
            string? env = Environment.GetEnvironmentVariable(EnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(env))
            {
                return env!;
            }

            string baseDir = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
            if (string.IsNullOrEmpty(baseDir))
            {
                baseDir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
            }

            return Path.Combine(baseDir, "bmadguard", "store");
        }

        public static bool IsStore(string directory) => File.Exists(Path.Combine(directory, MetaFileName));
    }
}
