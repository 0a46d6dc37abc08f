using System;
using System.IO;
using System.Runtime.InteropServices;

namespace BmadGuard.Core.Storage
{
    /// <summary>
    /// Every write the store makes goes through this seam, so the tests can put a file layer under the
    /// store that loses or tears whatever was not fsynced when the "power" goes (see PowerLossStorageIO
    /// in the tests). Reads go straight to the file system.
    /// </summary>
    public interface IStorageIO
    {
        /// <summary>Opens a file for writing; creates it (owner-only) when <paramref name="createNew"/>, failing if it exists.</summary>
        Stream OpenForWrite(string path, bool createNew);

        /// <summary>Makes everything written to <paramref name="stream"/> durable (fsync).</summary>
        void Sync(Stream stream);

        /// <summary>Cuts a file back to <paramref name="length"/> bytes.</summary>
        void SetLength(Stream stream, long length);

        /// <summary>Renames, replacing the target if it exists (atomic on one volume).</summary>
        void Move(string source, string destination);

        /// <summary>Makes a directory's entries (creates, renames) durable.</summary>
        void SyncDirectory(string directory);

        /// <summary>Creates a directory (owner-only on Unix) and its parents.</summary>
        void CreateDirectory(string directory);
    }

    /// <summary>The real file system.</summary>
    public sealed class OsStorageIO : IStorageIO
    {
        public static OsStorageIO Instance { get; } = new OsStorageIO();

        public Stream OpenForWrite(string path, bool createNew)
        {
            // Never write through a link: a new file is O_CREAT|O_EXCL (which refuses an existing link), an
            // existing one is checked with lstat first (see StoreFs).
            if (!createNew)
            {
                StoreFs.RefuseLink(path);
            }

#if NET8_0_OR_GREATER
            var options = new FileStreamOptions
            {
                Mode = createNew ? FileMode.CreateNew : FileMode.Open,
                Access = FileAccess.ReadWrite,
                Share = FileShare.ReadWrite | FileShare.Delete,
                BufferSize = 0, // every Write is one write(2): a record never sits in a user-space buffer
            };
            if (createNew && !OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            return new FileStream(path, options);
#else
            return new FileStream(path, createNew ? FileMode.CreateNew : FileMode.Open, FileAccess.ReadWrite,
                FileShare.ReadWrite | FileShare.Delete, 1);
#endif
        }

        public void Sync(Stream stream)
        {
            // FileStream.Flush(true) is fsync(2) on Unix and FlushFileBuffers on Windows.
            ((FileStream)stream).Flush(true);
        }

        public void SetLength(Stream stream, long length) => stream.SetLength(length);

        public void Move(string source, string destination)
        {
#if NET8_0_OR_GREATER
            File.Move(source, destination, overwrite: true);
#else
            if (File.Exists(destination))
            {
                File.Replace(source, destination, null);
            }
            else
            {
                File.Move(source, destination);
            }
#endif
        }

        public void SyncDirectory(string directory) => DirectorySync.Sync(directory);

        public void CreateDirectory(string directory) => StoreFs.CreateDirectory(directory);
    }

    /// <summary>fsync of a directory, which .NET has no API for.</summary>
    internal static class DirectorySync
    {
        private const int ORdOnly = 0;

        [DllImport("libc", EntryPoint = "open", SetLastError = true)]
        private static extern int Open(string path, int flags);

        [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
        private static extern int Fsync(int fd);

        [DllImport("libc", EntryPoint = "close", SetLastError = true)]
        private static extern int Close(int fd);

        public static void Sync(string directory)
        {
            // On Windows a rename's directory entry is made durable by NTFS's metadata journal; there is
            // no handle to flush. On Unix a created or renamed file is only durable once its directory is.
            if (RuntimeInformation.IsOSPlatform(OSPlatform.Windows))
            {
                return;
            }

            int fd = Open(directory, ORdOnly);
            if (fd < 0)
            {
                throw new IOException($"Cannot open directory '{directory}' to fsync it (errno {Marshal.GetLastWin32Error()}).");
            }

            try
            {
                if (Fsync(fd) != 0)
                {
                    throw new IOException($"fsync of directory '{directory}' failed (errno {Marshal.GetLastWin32Error()}).");
                }
            }
            finally
            {
                Close(fd);
            }
        }
    }
}
