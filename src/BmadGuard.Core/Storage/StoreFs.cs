using System;
using System.IO;

namespace BmadGuard.Core.Storage
{
    /// <summary>
    /// The file-system rules every file BmadGuard writes under a store or a backup obeys, in one place:
    /// <list type="bullet">
    /// <item>No symbolic link inside a store or a backup is followed or written through: a planted
    /// <c>writer.lock</c>, <c>quarantine/</c>, <c>backups/</c>, <c>audit.jsonl</c> or <c>outbox/</c> link would
    /// otherwise let BmadGuard overwrite any file its user can write (as root, <c>/etc/passwd</c>). The store
    /// root itself may be a link (users keep stores on another disk that way); only entries below it are
    /// refused, with <see cref="ErrorCodes.StoreUnsafePath"/> naming the entry.</item>
    /// <item>Every file is created owner-only (0600) and every directory 0700 on Unix, parents included.</item>
    /// <item>One mapping from an <see cref="IOException"/> to the store's error codes (a full disk is always
    /// <see cref="ErrorCodes.StoreFull"/>).</item>
    /// </list>
    /// Links are checked with lstat just before the open (.NET has no O_NOFOLLOW); new files are opened with
    /// O_CREAT|O_EXCL (<see cref="FileMode.CreateNew"/>), which never follows a link.
    /// </summary>
    public static class StoreFs
    {
        /// <summary>An <see cref="IStorageIO"/> that refuses any path below <paramref name="root"/> that passes through a link.</summary>
        public static IStorageIO Confine(string root, IStorageIO inner)
            => inner is ConfinedStorageIO c && SamePath(c.Root, root) ? inner : new ConfinedStorageIO(root, inner);

        /// <summary>True when <paramref name="path"/> is a symbolic link (or, on Windows, any reparse point); false when it is not or does not exist.</summary>
        public static bool IsLink(string path)
        {
            try
            {
#if NET8_0_OR_GREATER
                // LinkTarget is readlink(2) on the entry itself: it sees dangling links too.
                return new FileInfo(path).LinkTarget != null;
#else
                var attributes = File.GetAttributes(path);
                return (attributes & FileAttributes.ReparsePoint) != 0;
#endif
            }
            catch (Exception ex) when (ex is FileNotFoundException || ex is DirectoryNotFoundException)
            {
                return false;
            }
            catch (IOException)
            {
                return false;
            }
        }

        /// <summary>Throws <see cref="ErrorCodes.StoreUnsafePath"/> when <paramref name="path"/> itself is a link.</summary>
        public static void RefuseLink(string path)
        {
            if (IsLink(path))
            {
                throw Unsafe(path);
            }
        }

        /// <summary>
        /// Throws <see cref="ErrorCodes.StoreUnsafePath"/> when any entry from just below <paramref name="root"/> down
        /// to <paramref name="path"/> (inclusive) is a link. A path outside <paramref name="root"/> has only its last
        /// component checked.
        /// </summary>
        public static void CheckInside(string root, string path)
        {
            string full = Trim(Path.GetFullPath(path));
            string top = Trim(Path.GetFullPath(root));
            if (!IsUnder(top, full))
            {
                RefuseLink(full);
                return;
            }

            string current = top;
            foreach (var part in full.Substring(top.Length).Split(new[] { Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar }, StringSplitOptions.RemoveEmptyEntries))
            {
                current = Path.Combine(current, part);
                if (IsLink(current))
                {
                    throw Unsafe(current);
                }

                if (!Directory.Exists(current))
                {
                    return; // nothing below a missing entry exists yet; what is created under it is created by us
                }
            }
        }

        /// <summary>The error for a link found inside a store or a backup.</summary>
        public static BmadGuardException Unsafe(string path)
            => new BmadGuardException(ErrorCodes.StoreUnsafePath, FailureKind.StoreProblem,
                $"'{path}' is a symbolic link inside the store or backup. BmadGuard never follows a link there (it could write outside the store); nothing was written through it.", path);

        // ------------------------------------------------------------------ modes

        /// <summary>Owner read/write: every file BmadGuard creates.</summary>
        public const int FileMode0600 = 0x180;

        /// <summary>
        /// Creates <paramref name="directory"/> and any missing parents, each owner-only (0700) on Unix.
        /// (.NET's Directory.CreateDirectory(path, mode) gives the mode to the last directory only.)
        /// </summary>
        public static void CreateDirectory(string directory)
        {
            string full = Trim(Path.GetFullPath(directory));
            if (Directory.Exists(full))
            {
                return;
            }

            string? parent = Path.GetDirectoryName(full);
            if (!string.IsNullOrEmpty(parent) && !Directory.Exists(parent))
            {
                CreateDirectory(parent!);
            }

#if NET8_0_OR_GREATER
            if (!OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(full, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                return;
            }
#endif
            Directory.CreateDirectory(full);
        }

        /// <summary>
        /// Opens <paramref name="path"/> (created 0600 when missing) without following a link at <paramref name="path"/>
        /// nor below <paramref name="root"/>. <paramref name="append"/> opens O_APPEND (one write() per call lands whole
        /// at the end, even with other processes appending).
        /// </summary>
        public static FileStream OpenOrCreate(string root, string path, FileAccess access, bool append = false)
        {
            CheckInside(root, path);
            FileMode mode = append ? FileMode.Append : FileMode.OpenOrCreate;
#if NET8_0_OR_GREATER
            var options = new FileStreamOptions { Mode = mode, Access = access, Share = FileShare.ReadWrite | FileShare.Delete, BufferSize = 0 };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            return new FileStream(path, options);
#else
            return new FileStream(path, mode, access, FileShare.ReadWrite | FileShare.Delete, 1);
#endif
        }

        // ------------------------------------------------------------------ errors

        /// <summary>True when <paramref name="ex"/> says the disk (or a quota) is full: ENOSPC/EDQUOT, ERROR_DISK_FULL/ERROR_HANDLE_DISK_FULL.</summary>
        public static bool IsDiskFull(Exception ex)
        {
            if (!(ex is IOException))
            {
                return false;
            }

            int code = ex.HResult & 0xFFFF;
            return code == 112 || code == 39 || code == 28 || code == 122
                || ex.Message.IndexOf("No space left", StringComparison.OrdinalIgnoreCase) >= 0
                || ex.Message.IndexOf("disk full", StringComparison.OrdinalIgnoreCase) >= 0
                || ex.Message.IndexOf("Disk quota exceeded", StringComparison.OrdinalIgnoreCase) >= 0
                || ex.Message.IndexOf("not enough space", StringComparison.OrdinalIgnoreCase) >= 0;
        }

        /// <summary>
        /// The one mapping from an I/O failure to the store's codes: a full disk is <see cref="ErrorCodes.StoreFull"/>,
        /// anything else <see cref="ErrorCodes.StoreIOError"/>. <paramref name="fullDetail"/> says what a full disk
        /// left behind (default: nothing half-written is kept).
        /// </summary>
        public static BmadGuardException MapIOException(IOException ex, string what, string? path, string? fullDetail = null)
            => IsDiskFull(ex)
                ? new BmadGuardException(ErrorCodes.StoreFull, FailureKind.StoreProblem, $"{what}: the disk is full. {fullDetail ?? "Free some space and run it again."}", path, inner: ex)
                : new BmadGuardException(ErrorCodes.StoreIOError, FailureKind.StoreProblem, $"{what}: {ex.Message}", path, inner: ex);

        // ------------------------------------------------------------------ paths

        internal static bool IsUnder(string top, string full)
            => full.Length > top.Length
               && full.StartsWith(top, PathComparison)
               && (full[top.Length] == Path.DirectorySeparatorChar || full[top.Length] == Path.AltDirectorySeparatorChar || top.EndsWith(Path.DirectorySeparatorChar.ToString(), StringComparison.Ordinal));

        private static bool SamePath(string a, string b)
            => string.Equals(Trim(Path.GetFullPath(a)), Trim(Path.GetFullPath(b)), PathComparison);

        private static string Trim(string p)
        {
            string root = Path.GetPathRoot(p) ?? "";
            return p.Length > root.Length ? p.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar) : p;
        }

        private static StringComparison PathComparison
            => System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Linux)
                ? StringComparison.Ordinal
                : StringComparison.OrdinalIgnoreCase;
    }

    /// <summary>The store's writes, refused when they would pass through a link below <see cref="Root"/>.</summary>
    internal sealed class ConfinedStorageIO : IStorageIO
    {
        private readonly IStorageIO _inner;

        public ConfinedStorageIO(string root, IStorageIO inner)
        {
            Root = root;
            _inner = inner;
        }

        public string Root { get; }

        public Stream OpenForWrite(string path, bool createNew)
        {
            StoreFs.CheckInside(Root, path);
            return _inner.OpenForWrite(path, createNew);
        }

        public void Sync(Stream stream) => _inner.Sync(stream);

        public void SetLength(Stream stream, long length) => _inner.SetLength(stream, length);

        public void Move(string source, string destination)
        {
            StoreFs.CheckInside(Root, source);
            StoreFs.CheckInside(Root, Path.GetDirectoryName(Path.GetFullPath(destination))!);
            _inner.Move(source, destination);
        }

        public void SyncDirectory(string directory) => _inner.SyncDirectory(directory);

        public void CreateDirectory(string directory)
        {
            StoreFs.CheckInside(Root, directory);
            _inner.CreateDirectory(directory);
        }
    }
}
