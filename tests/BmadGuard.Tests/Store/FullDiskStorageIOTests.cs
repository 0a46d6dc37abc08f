using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using BmadGuard.Core;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Store
{
    /// <summary>
    /// The real file system, except that from the N-th allocating operation on (a write that grows a file, a
    /// file creation) everything fails with ENOSPC until <see cref="Free"/>: a disk filling up at any point of
    /// a publish, including a segment rollover, which a small tmpfs only hits by luck.
    /// </summary>
    public sealed class FullDiskStorageIO : IStorageIO
    {
        private int _untilFull;

        public FullDiskStorageIO(int allocationsUntilFull) => _untilFull = allocationsUntilFull;

        public bool Full { get; private set; }

        public void Free()
        {
            Full = false;
            _untilFull = int.MaxValue;
        }

        private void Allocate(string what)
        {
            if (!Full && --_untilFull <= 0)
            {
                Full = true;
            }

            if (Full)
            {
                throw new IOException($"No space left on device : '{what}'", 28);
            }
        }

        public Stream OpenForWrite(string path, bool createNew)
        {
            if (createNew)
            {
                Allocate(path);
            }

            return new FullDiskStream(this, (FileStream)OsStorageIO.Instance.OpenForWrite(path, createNew));
        }

        public void Sync(Stream stream) => OsStorageIO.Instance.Sync(((FullDiskStream)stream).Inner);

        public void SetLength(Stream stream, long length) => OsStorageIO.Instance.SetLength(((FullDiskStream)stream).Inner, length);

        public void Move(string source, string destination) => OsStorageIO.Instance.Move(source, destination);

        public void SyncDirectory(string directory) => OsStorageIO.Instance.SyncDirectory(directory);

        public void CreateDirectory(string directory) => OsStorageIO.Instance.CreateDirectory(directory);

        private sealed class FullDiskStream : Stream
        {
            private readonly FullDiskStorageIO _io;

            public FullDiskStream(FullDiskStorageIO io, FileStream inner)
            {
                _io = io;
                Inner = inner;
            }

            public FileStream Inner { get; }

            public override bool CanRead => true;

            public override bool CanSeek => true;

            public override bool CanWrite => true;

            public override long Length => Inner.Length;

            public override long Position
            {
                get => Inner.Position;
                set => Inner.Position = value;
            }

            public override void Flush() => Inner.Flush();

            public override int Read(byte[] buffer, int offset, int count) => Inner.Read(buffer, offset, count);

            public override long Seek(long offset, SeekOrigin origin) => Inner.Seek(offset, origin);

            public override void SetLength(long value) => Inner.SetLength(value);

            public override void Write(byte[] buffer, int offset, int count)
            {
                if (Inner.Position + count > Inner.Length)
                {
                    try
                    {
                        _io.Allocate(Inner.Name);
                    }
                    catch (IOException)
                    {
                        // Like write(2) on a full disk: part of it may land before ENOSPC.
                        Inner.Write(buffer, offset, count / 3);
                        throw;
                    }
                }

                Inner.Write(buffer, offset, count);
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

    public sealed class FullDiskTests
    {
        [Fact]
        public void A_disk_filling_at_any_write_of_a_publish_is_StoreFull_and_leaves_the_store_valid()
        {
            for (int n = 1; n <= 12; n++)
            {
                using var dir = new TempDir();
                string root = dir.Combine("store");
                var settings = new StoreSettings { MaxEventBytes = 1024, SegmentMaxBytes = 2048 };
                FileEventStore.Initialize(root, settings, null, out _).Dispose();
                var acked = new List<EventRecord>();
                var io = new FullDiskStorageIO(n);
                using (var store = FileEventStore.Open(root, new StoreOpenOptions { IO = io }))
                {
                    BmadGuardException? error = null;
                    // Batches of 1..5 events of ~450 bytes: each rolls the 2 KiB segments over at least once.
                    for (int batch = 1; batch <= 5 && error == null; batch++)
                    {
                        var drafts = Enumerable.Range(0, batch)
                            .Select(i => EventDraft.FromJson("full.test", null, null, $"{{\"marker\":\"n{n}-b{batch}-{i}\",\"pad\":\"{new string('x', 400)}\"}}"))
                            .ToList();
                        try
                        {
                            store.Publish(drafts, acked.Add);
                        }
                        catch (BmadGuardException ex)
                        {
                            error = ex;
                        }
                    }

                    Assert.True(error != null, $"n={n}: the disk never filled");
                    Assert.True(error!.Code == ErrorCodes.StoreFull, $"n={n}: {error.Code}: {error.Message}");
                    Assert.Equal(FailureKind.StoreProblem, error.Kind);

                    // Valid: no torn tail, exactly the acknowledged events.
                    var records = StoreInspector.AssertClean(root);
                    Assert.Equal(acked.Select(r => r.Json), records.Select(r => r.EventJson));

                    // Room again: the same store object publishes.
                    io.Free();
                    store.Publish(EventDraft.FromJson("full.test", null, null, "{\"marker\":\"after\"}"));
                    Assert.Equal(acked.Count + 1, StoreInspector.AssertClean(root).Count);
                }
            }
        }

        [Fact]
        public void A_full_disk_while_quarantining_a_torn_tail_is_StoreFull_and_changes_nothing()
        {
            using var dir = new TempDir();
            string root = dir.Combine("store");
            using (var s = FileEventStore.Initialize(root, null, null, out _))
            {
                s.Publish(EventDraft.FromJson("full.test", null, null, "{\"marker\":\"one\"}"));
            }

            string segment = Directory.GetFiles(Path.Combine(root, "segments"), "segment-*.jsonl").Single();
            File.AppendAllText(segment, "{\"seq\":2,\"id\":\"x");
            byte[] torn = File.ReadAllBytes(segment);

            var error = Assert.Throws<BmadGuardException>(() => FileEventStore.Open(root, new StoreOpenOptions { IO = new FullDiskStorageIO(1) }).Dispose());
            Assert.Equal(ErrorCodes.StoreFull, error.Code);
            Assert.Equal(torn, File.ReadAllBytes(segment));
            Assert.Empty(Directory.GetFiles(Path.Combine(root, "quarantine")));

            using (var s = FileEventStore.Open(root))
            {
                Assert.Equal("TornTailRepaired", Assert.Single(s.Notices).Code);
            }

            Assert.Single(StoreInspector.AssertClean(root));
        }
    }
}
