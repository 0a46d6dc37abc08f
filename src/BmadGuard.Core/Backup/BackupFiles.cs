using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Threading;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Backup
{
    /// <summary>What one pass over a segment file found: its hash, and whether its records hold.</summary>
    internal sealed class SegmentScan
    {
        public long Size { get; set; }
        public string Sha256 { get; set; } = "";
        public long FirstSeq { get; set; } = -1;
        public long LastSeq { get; set; } = -1;
        public long Records { get; set; }

        /// <summary>Where the first damaged line starts (-1 when every line holds).</summary>
        public long BadOffset { get; set; } = -1;
        public string? BadReason { get; set; }

        public bool RecordsOk => BadOffset < 0;
    }

    /// <summary>File mechanics for backups: hashing, durable copies, hard links, directory exchange.</summary>
    internal static class BackupFiles
    {
        private const int BlockSize = 1 << 20;

        /// <summary>
        /// Reads a file once: SHA-256 of every byte, and (for segments) every line checked the way the store
        /// reads it — header first, then records whose CRC holds and whose seqs run on without a gap.
        /// Bounded memory: one block plus the longest line.
        /// </summary>
        public static SegmentScan Scan(string path, bool checkRecords, IProgress<long>? bytesRead, CancellationToken cancellationToken, bool hash = true)
        {
            var result = new SegmentScan();
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using var stream = OpenRead(path);
            byte[] buffer = new byte[BlockSize];
            int filled = 0;
            long bufferOffset = 0; // file offset of buffer[0]
            long expectSeq = -1;
            bool lineChecking = checkRecords;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (filled == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2); // a line longer than the block
                }

                int n = stream.Read(buffer, filled, buffer.Length - filled);
                if (n > 0)
                {
                    if (hash)
                    {
                        sha.AppendData(buffer, filled, n);
                    }

                    result.Size += n;
                    bytesRead?.Report(n);
                }

                filled += n;
                int start = 0;
                if (lineChecking)
                {
                    while (true)
                    {
                        int nl = Array.IndexOf(buffer, (byte)'\n', start, filled - start);
                        if (nl < 0)
                        {
                            break;
                        }

                        var line = new ReadOnlySpan<byte>(buffer, start, nl - start);
                        long lineOffset = bufferOffset + start;
                        string? bad = CheckLine(line, lineOffset, ref expectSeq, result);
                        if (bad != null)
                        {
                            result.BadOffset = lineOffset;
                            result.BadReason = bad;
                            lineChecking = false;
                            break;
                        }

                        start = nl + 1;
                    }
                }
                else
                {
                    start = filled;
                }

                if (n == 0)
                {
                    if (lineChecking && start < filled)
                    {
                        result.BadOffset = bufferOffset + start;
                        result.BadReason = "the file ends in an incomplete line";
                    }
                    else if (lineChecking && result.FirstSeq < 0)
                    {
                        result.BadOffset = 0;
                        result.BadReason = "the segment is empty: its header is missing";
                    }

                    break;
                }

                if (start > 0)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, filled - start);
                    filled -= start;
                    bufferOffset += start;
                }
            }

            result.Sha256 = Hashing.ToHex(sha.GetHashAndReset());
            if (result.FirstSeq >= 0)
            {
                result.LastSeq = expectSeq - 1;
            }

            return result;
        }

        private static string? CheckLine(ReadOnlySpan<byte> line, long offset, ref long expectSeq, SegmentScan result)
        {
            if (offset == 0)
            {
                long first = SegmentHeader.ParseFirstSeq(line);
                if (first < 1)
                {
                    return "the segment header is damaged";
                }

                result.FirstSeq = first;
                expectSeq = first;
                return null;
            }

            if (!RecordCodec.ChecksumOk(line) || RecordCodec.IsHeader(line))
            {
                return "a record's checksum does not hold";
            }

            long seq = RecordCodec.ReadSeq(line);
            if (seq != expectSeq)
            {
                return $"expected seq {expectSeq} but found {seq}";
            }

            expectSeq++;
            result.Records++;
            return null;
        }

        /// <summary>
        /// Copies <paramref name="length"/> bytes from an open source to a new file, hashing what it wrote,
        /// and fsyncs the new file (its bytes must be on disk before the manifest that vouches for them).
        /// </summary>
        public static string CopyDurably(Stream source, long length, string destination, IStorageIO io, IProgress<long>? bytesCopied, CancellationToken cancellationToken)
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = new byte[BlockSize];
            source.Position = 0;
            using (var target = io.OpenForWrite(destination, createNew: true))
            {
                long remaining = length;
                while (remaining > 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    int n = source.Read(buffer, 0, (int)Math.Min(buffer.Length, remaining));
                    if (n == 0)
                    {
                        throw new IOException($"'{destination}': the source ended {remaining} bytes early.");
                    }

                    target.Write(buffer, 0, n);
                    sha.AppendData(buffer, 0, n);
                    remaining -= n;
                    bytesCopied?.Report(n);
                }

                // fsync each copied file: the manifest written after it claims these bytes, so they must be
                // durable first, or a crash could leave a manifest vouching for a file of zeros.
                io.Sync(target);
            }

            return Hashing.ToHex(sha.GetHashAndReset());
        }

        /// <summary>SHA-256 of the first <paramref name="length"/> bytes of an open file.</summary>
        public static string HashStream(Stream source, long length, CancellationToken cancellationToken)
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = new byte[BlockSize];
            source.Position = 0;
            long remaining = length;
            while (remaining > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int n = source.Read(buffer, 0, (int)Math.Min(buffer.Length, remaining));
                if (n == 0)
                {
                    break;
                }

                sha.AppendData(buffer, 0, n);
                remaining -= n;
            }

            return Hashing.ToHex(sha.GetHashAndReset());
        }

        /// <summary>True when the first <paramref name="length"/> bytes of two files are equal.</summary>
        public static bool PrefixEqual(string a, string b, long length, CancellationToken cancellationToken)
        {
            using var sa = OpenRead(a);
            using var sb = OpenRead(b);
            if (sa.Length < length || sb.Length < length)
            {
                return false;
            }

            byte[] ba = new byte[BlockSize], bb = new byte[BlockSize];
            long remaining = length;
            while (remaining > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int want = (int)Math.Min(BlockSize, remaining);
                if (ReadFull(sa, ba, want) != want || ReadFull(sb, bb, want) != want
                    || !new ReadOnlySpan<byte>(ba, 0, want).SequenceEqual(new ReadOnlySpan<byte>(bb, 0, want)))
                {
                    return false;
                }

                remaining -= want;
            }

            return true;
        }

        private static int ReadFull(Stream s, byte[] buffer, int count)
        {
            int done = 0;
            while (done < count)
            {
                int n = s.Read(buffer, done, count - done);
                if (n == 0)
                {
                    break;
                }

                done += n;
            }

            return done;
        }

        public static string CopyFileDurably(string source, long length, string destination, IStorageIO io, IProgress<long>? bytesCopied, CancellationToken cancellationToken)
        {
            using var s = OpenRead(source);
            return CopyDurably(s, length, destination, io, bytesCopied, cancellationToken);
        }

        /// <summary>Opens a store or backup file to read; a link there is refused (StoreUnsafePath), never followed.</summary>
        public static FileStream OpenRead(string path)
        {
            StoreFs.RefuseLink(path);
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
        }

        // ------------------------------------------------------------------ hard links

        [DllImport("libc", EntryPoint = "link", SetLastError = true)]
        private static extern int UnixLink(string oldpath, string newpath);

        [DllImport("kernel32.dll", EntryPoint = "CreateHardLinkW", SetLastError = true, CharSet = CharSet.Unicode)]
        [return: MarshalAs(UnmanagedType.Bool)]
        private static extern bool CreateHardLink(string lpFileName, string lpExistingFileName, IntPtr lpSecurityAttributes);

        /// <summary>Hard-links <paramref name="existing"/> as <paramref name="newPath"/>; false when the volume or OS cannot (caller copies instead).</summary>
        public static bool TryHardLink(string existing, string newPath)
        {
            try
            {
                if (RuntimeInformation.IsOSPlatform(OSPlatform.Windows))
                {
                    return CreateHardLink(newPath, existing, IntPtr.Zero);
                }

                return UnixLink(existing, newPath) == 0;
            }
            catch (Exception ex) when (ex is DllNotFoundException || ex is EntryPointNotFoundException)
            {
                return false;
            }
        }

        // ------------------------------------------------------------------ directory exchange

        [DllImport("libc", EntryPoint = "renameat2", SetLastError = true)]
        private static extern int RenameAt2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);

        private const int AtFdCwd = -100;
        private const uint RenameExchange = 2;

        /// <summary>
        /// Swaps two directories atomically (Linux renameat2 RENAME_EXCHANGE): at every instant, and after a
        /// crash, <paramref name="a"/> holds one complete set or the other. Returns false where the OS or file
        /// system cannot; the caller then uses two renames.
        /// </summary>
        public static bool TryExchange(string a, string b)
        {
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
            {
                return false;
            }

            try
            {
                return RenameAt2(AtFdCwd, a, AtFdCwd, b, RenameExchange) == 0;
            }
            catch (Exception ex) when (ex is DllNotFoundException || ex is EntryPointNotFoundException)
            {
                return false;
            }
        }

        public static void TryDeleteDirectory(string path)
        {
            try
            {
                if (Directory.Exists(path))
                {
                    Directory.Delete(path, recursive: true);
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        [DllImport("libc", EntryPoint = "realpath", SetLastError = true)]
        private static extern IntPtr UnixRealPath(string path, IntPtr resolved);

        [DllImport("libc", EntryPoint = "free")]
        private static extern void UnixFree(IntPtr p);

        /// <summary>
        /// The path with every symbolic link resolved (Unix realpath of the deepest existing ancestor, plus the
        /// rest), so a destination that reaches the store's segments through a link is recognised.
        /// </summary>
        public static string RealPath(string path)
        {
            string full = Path.GetFullPath(path);
            if (RuntimeInformation.IsOSPlatform(OSPlatform.Windows))
            {
                return full;
            }

            string existing = full;
            string rest = "";
            while (!Directory.Exists(existing) && !File.Exists(existing))
            {
                string? parent = Path.GetDirectoryName(existing);
                if (parent == null)
                {
                    return full;
                }

                rest = rest.Length == 0 ? Path.GetFileName(existing) : Path.Combine(Path.GetFileName(existing), rest);
                existing = parent;
            }

            try
            {
                IntPtr resolved = UnixRealPath(existing, IntPtr.Zero);
                if (resolved == IntPtr.Zero)
                {
                    return full;
                }

                try
                {
                    string real = Marshal.PtrToStringAnsi(resolved)!;
                    return rest.Length == 0 ? real : Path.Combine(real, rest);
                }
                finally
                {
                    UnixFree(resolved);
                }
            }
            catch (Exception ex) when (ex is DllNotFoundException || ex is EntryPointNotFoundException)
            {
                return full;
            }
        }

        /// <summary>True when <paramref name="path"/> is <paramref name="dir"/> or inside it, after resolving symbolic links.</summary>
        public static bool IsSameOrInside(string path, string dir)
        {
            string p = RealPath(path).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
            string d = RealPath(dir).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
            var comparison = RuntimeInformation.IsOSPlatform(OSPlatform.Linux) ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
            return string.Equals(p, d, comparison) || p.StartsWith(d + Path.DirectorySeparatorChar, comparison);
        }
    }
}
