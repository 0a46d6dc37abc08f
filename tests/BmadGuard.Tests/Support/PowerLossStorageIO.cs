using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using BmadGuard.Core.Storage;

namespace BmadGuard.Tests.Support
{
    /// <summary>Thrown by <see cref="PowerLossStorageIO"/> once the power is off: the "process" stops here.</summary>
    public sealed class PowerCutException : Exception
    {
        public PowerCutException() : base("power cut")
        {
        }
    }

    /// <summary>
    /// A file layer over the real file system that remembers what a power loss could keep.
    /// <list type="bullet">
    /// <item>Per file (inode): its content as of its last <see cref="Sync"/>, and its current content.</item>
    /// <item>Per name: the file it named when its directory was last <see cref="SyncDirectory"/>-ed. A create or
    /// rename is durable only then; directories created through it likewise need their parent synced.</item>
    /// </list>
    /// <see cref="FailAfter"/> makes the K-th operation from now the last one (a write is cut part way) and
    /// every later one throw <see cref="PowerCutException"/>. <see cref="PowerCut"/> then rewrites the files to
    /// a crash image: synced bytes plus a random prefix of the unsynced ones, the end of that prefix
    /// sometimes torn (zeros or garbage); creates and renames not yet made durable kept or undone at random.
    /// Files this layer never wrote (writer.lock, files from before) are taken as durable as they are.
    /// Deliberately no real fsync: the model, not the disk, decides what survives, and the tests stay fast.
    /// </summary>
    public sealed class PowerLossStorageIO : IStorageIO
    {
        private sealed class Inode
        {
            public Inode(byte[] content, bool synced)
            {
                Current = new List<byte>(content);
                Synced = synced ? content : Array.Empty<byte>();
            }

            public List<byte> Current { get; }

            public byte[] Synced { get; set; }
        }

        private readonly object _gate = new object();
        private readonly Dictionary<string, Inode> _current = new Dictionary<string, Inode>(StringComparer.Ordinal);
        private readonly Dictionary<string, Inode> _durable = new Dictionary<string, Inode>(StringComparer.Ordinal);
        private readonly HashSet<string> _dirsCreated = new HashSet<string>(StringComparer.Ordinal);
        private readonly HashSet<string> _dirsDurable = new HashSet<string>(StringComparer.Ordinal);
        private long _opsLeft = long.MaxValue;
        private Random _tearRandom = new Random(1);

        /// <summary>Operations done so far (opens, writes, syncs, truncations, renames, directory syncs and creates).</summary>
        public long Operations { get; private set; }

        public bool PowerIsOff { get; private set; }

        /// <summary>The <paramref name="k"/>-th operation from now is the last (a write is done only part way).</summary>
        public void FailAfter(long k, Random random)
        {
            lock (_gate)
            {
                _opsLeft = k;
                _tearRandom = random;
            }
        }

        /// <summary>Counts an operation; returns how many bytes of <paramref name="writeLength"/> go through (all, unless this is the last).</summary>
        private int Step(int writeLength = 0)
        {
            if (PowerIsOff)
            {
                throw new PowerCutException();
            }

            Operations++;
            if (--_opsLeft > 0)
            {
                return writeLength;
            }

            PowerIsOff = true;
            if (writeLength > 0)
            {
                return _tearRandom.Next(0, writeLength); // the write that was under way when the power went
            }

            throw new PowerCutException();
        }

        private static string Full(string path) => Path.GetFullPath(path);

        private Inode Track(string path)
        {
            if (!_current.TryGetValue(path, out var inode))
            {
                // A file from before: as durable as it is now.
                inode = new Inode(File.Exists(path) ? File.ReadAllBytes(path) : Array.Empty<byte>(), synced: true);
                _current[path] = inode;
                _durable[path] = inode;
            }

            return inode;
        }

        public Stream OpenForWrite(string path, bool createNew)
        {
            lock (_gate)
            {
                Step();
                path = Full(path);
                var real = (FileStream)OsStorageIO.Instance.OpenForWrite(path, createNew);
                Inode inode;
                if (createNew)
                {
                    inode = new Inode(Array.Empty<byte>(), synced: false);
                    _current[path] = inode; // not in _durable until the directory is synced
                }
                else
                {
                    inode = Track(path);
                }

                return new TrackedStream(this, real, inode);
            }
        }

        public void Sync(Stream stream)
        {
            lock (_gate)
            {
                Step();
                var t = (TrackedStream)stream;
                t.Inner.Flush();
                t.Inode.Synced = t.Inode.Current.ToArray();
            }
        }

        public void SetLength(Stream stream, long length)
        {
            lock (_gate)
            {
                Step();
                var t = (TrackedStream)stream;
                t.Inner.SetLength(length);
                var c = t.Inode.Current;
                if (length < c.Count)
                {
                    c.RemoveRange((int)length, c.Count - (int)length);
                }
                else
                {
                    c.AddRange(new byte[length - c.Count]);
                }
            }
        }

        public void Move(string source, string destination)
        {
            lock (_gate)
            {
                Step();
                source = Full(source);
                destination = Full(destination);
                var inode = Track(source);
                if (File.Exists(destination))
                {
                    // The file a rename replaces, if it is from before this layer: durable under its name until the
                    // directory is synced, so a power cut may bring it back (untracked, the cut would drop the name).
                    Track(destination);
                }

                OsStorageIO.Instance.Move(source, destination);
                _current.Remove(source);
                _current[destination] = inode;
            }
        }

        public void SyncDirectory(string directory)
        {
            lock (_gate)
            {
                Step();
                directory = Full(directory).TrimEnd(Path.DirectorySeparatorChar);
                foreach (var path in _durable.Keys.Where(p => Path.GetDirectoryName(p) == directory).ToList())
                {
                    if (!_current.ContainsKey(path))
                    {
                        _durable.Remove(path);
                    }
                }

                foreach (var kv in _current.Where(kv => Path.GetDirectoryName(kv.Key) == directory))
                {
                    _durable[kv.Key] = kv.Value;
                }

                foreach (var d in _dirsCreated.Where(d => Path.GetDirectoryName(d) == directory))
                {
                    _dirsDurable.Add(d);
                }
            }
        }

        public void CreateDirectory(string directory)
        {
            lock (_gate)
            {
                Step();
                directory = Full(directory).TrimEnd(Path.DirectorySeparatorChar);
                var missing = new List<string>();
                for (string? d = directory; d != null && !Directory.Exists(d); d = Path.GetDirectoryName(d))
                {
                    missing.Add(d);
                }

                OsStorageIO.Instance.CreateDirectory(directory);
                foreach (var d in missing)
                {
                    _dirsCreated.Add(d);
                }
            }
        }

        /// <summary>
        /// The power goes: every file this layer wrote is rewritten to what the disk could hold afterwards.
        /// Call after the "process" (the store) is abandoned. Returns a description of what was cut.
        /// </summary>
        public string PowerCut(Random random)
        {
            lock (_gate)
            {
                PowerIsOff = true;
                var log = new List<string>();
                var image = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                foreach (string path in _current.Keys.Union(_durable.Keys).ToList())
                {
                    _current.TryGetValue(path, out var now);
                    _durable.TryGetValue(path, out var kept);
                    Inode? survivor;
                    if (ReferenceEquals(now, kept))
                    {
                        survivor = now;
                    }
                    else
                    {
                        // A create, rename or removal not yet made durable: it may or may not have reached the disk.
                        survivor = random.Next(2) == 0 ? now : kept;
                        log.Add($"{Path.GetFileName(path)}: name {(survivor == now ? "kept" : "undone")}");
                    }

                    if (survivor != null)
                    {
                        image[path] = Image(survivor, random, path, log);
                    }
                }

                foreach (string path in _current.Keys.Union(_durable.Keys))
                {
                    if (File.Exists(path))
                    {
                        File.Delete(path);
                    }
                }

                foreach (var d in _dirsCreated.Where(d => !_dirsDurable.Contains(d)).OrderBy(d => d.Length))
                {
                    if (Directory.Exists(d) && random.Next(2) == 0)
                    {
                        Directory.Delete(d, recursive: true); // its entry never reached the disk: nothing under it survives
                        log.Add($"{d}: directory lost");
                    }
                }

                foreach (var kv in image)
                {
                    if (Directory.Exists(Path.GetDirectoryName(kv.Key)))
                    {
                        File.WriteAllBytes(kv.Key, kv.Value);
                        if (!OperatingSystem.IsWindows())
                        {
                            File.SetUnixFileMode(kv.Key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                        }
                    }
                }

                return string.Join("; ", log);
            }
        }

        /// <summary>Synced bytes, then a random prefix of what was written since; the prefix's end maybe torn.</summary>
        private static byte[] Image(Inode inode, Random random, string path, List<string> log)
        {
            byte[] synced = inode.Synced;
            byte[] current = inode.Current.ToArray();
            int common = 0;
            while (common < synced.Length && common < current.Length && synced[common] == current[common])
            {
                common++;
            }

            if (common == current.Length && common == synced.Length)
            {
                return synced;
            }

            if (common < synced.Length && random.Next(2) == 0)
            {
                log.Add($"{Path.GetFileName(path)}: unsynced truncation/overwrite lost");
                return synced; // the unsynced change (a cut, an overwrite) did not reach the disk
            }

            int keep = random.Next(0, current.Length - common + 1);
            byte[] result = current.AsSpan(0, common + keep).ToArray();
            if (keep > 0 && random.Next(3) == 0)
            {
                int tear = random.Next(1, Math.Min(keep, 600) + 1);
                var torn = result.AsSpan(result.Length - tear);
                if (random.Next(2) == 0)
                {
                    torn.Clear();
                }
                else
                {
                    random.NextBytes(torn);
                }

                log.Add($"{Path.GetFileName(path)}: kept {keep} of {current.Length - common} unsynced bytes, last {tear} torn");
            }
            else
            {
                log.Add($"{Path.GetFileName(path)}: kept {keep} of {current.Length - common} unsynced bytes");
            }

            return result;
        }

        private sealed class TrackedStream : Stream
        {
            private readonly PowerLossStorageIO _io;

            public TrackedStream(PowerLossStorageIO io, FileStream inner, Inode inode)
            {
                _io = io;
                Inner = inner;
                Inode = inode;
            }

            public FileStream Inner { get; }

            public Inode Inode { get; }

            public override bool CanRead => Inner.CanRead;

            public override bool CanSeek => Inner.CanSeek;

            public override bool CanWrite => Inner.CanWrite;

            public override long Length => Inner.Length;

            public override long Position
            {
                get => Inner.Position;
                set => Inner.Position = value;
            }

            public override void Flush() => Inner.Flush();

            public override int Read(byte[] buffer, int offset, int count) => Inner.Read(buffer, offset, count);

            public override long Seek(long offset, SeekOrigin origin) => Inner.Seek(offset, origin);

            public override void SetLength(long value) => throw new NotSupportedException("the store must cut files through IStorageIO.SetLength");

            public override void Write(byte[] buffer, int offset, int count)
            {
                lock (_io._gate)
                {
                    int allowed = _io.Step(count);
                    long position = Inner.Position;
                    Inner.Write(buffer, offset, allowed);
                    var c = Inode.Current;
                    if (position > c.Count)
                    {
                        c.AddRange(new byte[position - c.Count]);
                    }

                    for (int i = 0; i < allowed; i++)
                    {
                        long at = position + i;
                        if (at < c.Count)
                        {
                            c[(int)at] = buffer[offset + i];
                        }
                        else
                        {
                            c.Add(buffer[offset + i]);
                        }
                    }

                    if (allowed < count)
                    {
                        throw new PowerCutException();
                    }
                }
            }

            protected override void Dispose(bool disposing)
            {
                if (disposing)
                {
                    Inner.Dispose();
                }

                base.Dispose(disposing);
            }
        }
    }
}
