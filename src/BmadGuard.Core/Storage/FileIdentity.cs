using System;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BmadGuard.Core.Storage
{
    /// <summary>
    /// A file's identity (device and inode) on Linux, from fstat(2) of a descriptor and stat(2) of a path: how a lock
    /// holder tells that the lock file it holds is still the one at the path. Elsewhere every check answers "same".
    /// </summary>
    internal static class FileIdentity
    {
        // struct stat on Linux x86_64 and arm64 (asm-generic) both start with st_dev (64 bits), st_ino (64 bits).
        private const int StatBufferSize = 256;

        public static bool Supported { get; } = RuntimeInformation.IsOSPlatform(OSPlatform.Linux)
            && (RuntimeInformation.ProcessArchitecture == Architecture.X64 || RuntimeInformation.ProcessArchitecture == Architecture.Arm64);

        [DllImport("libc", EntryPoint = "fstat", SetLastError = true)]
        private static extern int FStat(int fd, byte[] buffer);

        [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
        private static extern int Stat(string path, byte[] buffer);

        /// <summary>(device, inode) of a path, or null when it does not exist or cannot be checked.</summary>
        public static (ulong Dev, ulong Ino)? OfPath(string path)
        {
            if (!Supported)
            {
                return null;
            }

            var buffer = new byte[StatBufferSize];
            return Stat(path, buffer) == 0 ? Read(buffer) : ((ulong, ulong)?)null;
        }

        public static (ulong Dev, ulong Ino)? OfDescriptor(int fd)
        {
            if (!Supported)
            {
                return null;
            }

            var buffer = new byte[StatBufferSize];
            return FStat(fd, buffer) == 0 ? Read(buffer) : ((ulong, ulong)?)null;
        }

        /// <summary>True when <paramref name="fd"/> is the file at <paramref name="path"/>; false when the path is gone or another file.</summary>
        public static bool SameFile(int fd, string path)
        {
            if (!Supported)
            {
                return true;
            }

            var held = OfDescriptor(fd);
            return held == null || held == OfPath(path);
        }

        public static bool SameFile(SafeFileHandle handle, string path)
        {
            if (!Supported)
            {
                return true;
            }

            bool added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                return SameFile((int)handle.DangerousGetHandle(), path);
            }
            finally
            {
                if (added)
                {
                    handle.DangerousRelease();
                }
            }
        }

        private static (ulong, ulong) Read(byte[] b) => (BitConverter.ToUInt64(b, 0), BitConverter.ToUInt64(b, 8));
    }
}
