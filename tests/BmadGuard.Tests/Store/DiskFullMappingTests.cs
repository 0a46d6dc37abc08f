using System;
using System.IO;
using System.Linq;
using BmadGuard.Core;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Integrity;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Store
{
    /// <summary>
    /// Issue 9: ENOSPC was StoreFull in publish but StoreIOError in backup, restore and repair. One mapping
    /// (StoreFs.MapIOException / IsDiskFull) now serves every command: a full disk is StoreFull everywhere.
    /// </summary>
    [Collection("StoreProcesses")]
    public sealed class DiskFullMappingTests
    {
        private static string NewStore(TempDir dir, bool backup)
        {
            string store = dir.Combine("store");
            Assert.Equal(0, Support.Cli.Run("init", "--store", store).ExitCode);
            for (int i = 0; i < 3; i++)
            {
                Assert.Equal(0, Support.Cli.Run("publish", "--store", store, "--type", "full.map", "--data", "{\"n\":" + i + "}").ExitCode);
            }

            if (backup)
            {
                Assert.Equal(0, Support.Cli.Run("backup", "--store", store).ExitCode);
            }

            return store;
        }

        [Fact]
        public void Backup_on_a_full_disk_is_StoreFull()
        {
            using var dir = new TempDir();
            string store = NewStore(dir, backup: false);
            var ex = Assert.Throws<BmadGuardException>(() => StoreBackup.Create(store, new BackupOptions { IO = new FullDiskStorageIO(1) }));
            Assert.Equal(ErrorCodes.StoreFull, ex.Code);
        }

        [Fact]
        public void Restore_on_a_full_disk_is_StoreFull()
        {
            using var dir = new TempDir();
            string store = NewStore(dir, backup: true);
            var ex = Assert.Throws<BmadGuardException>(() => StoreRestore.Restore(store, new RestoreRequest { Latest = true, IO = new FullDiskStorageIO(1) }));
            Assert.Equal(ErrorCodes.StoreFull, ex.Code);
        }

        [Fact]
        public void Repair_on_a_full_disk_is_StoreFull()
        {
            using var dir = new TempDir();
            string store = NewStore(dir, backup: false);
            // One flipped byte in a record's data: repair quarantines a copy of the segment first (an allocation).
            string segment = Directory.GetFiles(Path.Combine(store, "segments")).Single();
            byte[] bytes = File.ReadAllBytes(segment);
            int flip = Array.IndexOf(bytes, (byte)'n', bytes.Length / 2);
            bytes[flip] = (byte)'m';
            File.WriteAllBytes(segment, bytes);
            var ex = Assert.Throws<BmadGuardException>(() => StoreRepair.Repair(store, new StoreRepairOptions { IO = new FullDiskStorageIO(1) }));
            Assert.Equal(ErrorCodes.StoreFull, ex.Code);
        }
    }
}
