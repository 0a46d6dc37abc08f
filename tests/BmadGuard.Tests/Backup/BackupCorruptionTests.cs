using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using BmadGuard.Core.Backup;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace BmadGuard.Tests.Backup
{
    /// <summary>
    /// Seeded corruption injection into backups: bit flips at random offsets in every kind of backup file
    /// (segments, manifest, settings), truncations, runs of zeros, garbage appended, deleted and renamed
    /// files. Every case must be detected by BackupVerifier, with an error naming the damaged file; the
    /// file is then put back and the backup must verify clean again (so a verifier that always complains
    /// fails too).
    /// </summary>
    public sealed class BackupCorruptionTests
    {
        private readonly ITestOutputHelper _output;

        public BackupCorruptionTests(ITestOutputHelper output) => _output = output;

        [Fact]
        public void EveryInjectedCorruptionIsDetected_NamingTheRightFile()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = BackupFixture.NewStore(store))
            {
                BackupFixture.Publish(s, 120, batch: 7);
            }

            var backup = StoreBackup.Create(store, new BackupOptions { Incremental = false });
            var files = Directory.GetFiles(backup.Path, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).ToArray();
            Assert.True(files.Length >= 6, "want several segments plus manifest and settings");
            Assert.True(BackupVerifier.Verify(backup.Path).Healthy);

            var random = new Random(20261122);
            var kinds = new[] { "flip", "flip", "flip", "flip", "flip", "flip", "truncate", "zeros", "append", "delete", "rename" };
            var byKind = new Dictionary<string, int>();
            for (int i = 0; i < 150; i++)
            {
                string file = files[random.Next(files.Length)];
                string kind = kinds[random.Next(kinds.Length)];
                byte[] original = File.ReadAllBytes(file);
                string what;
                switch (kind)
                {
                    case "flip":
                    {
                        var b = (byte[])original.Clone();
                        int offset = random.Next(b.Length);
                        int bit = random.Next(8);
                        b[offset] ^= (byte)(1 << bit);
                        File.WriteAllBytes(file, b);
                        what = $"bit {bit} at {offset}";
                        break;
                    }

                    case "truncate":
                    {
                        int keep = random.Next(original.Length);
                        File.WriteAllBytes(file, original.AsSpan(0, keep).ToArray());
                        what = $"cut to {keep}";
                        break;
                    }

                    case "zeros":
                    {
                        var b = (byte[])original.Clone();
                        int offset = random.Next(b.Length);
                        int count = Math.Min(b.Length - offset, 1 + random.Next(64));
                        bool changed = false;
                        for (int k = offset; k < offset + count; k++)
                        {
                            changed |= b[k] != 0;
                            b[k] = 0;
                        }

                        if (!changed)
                        {
                            b[offset] = 1;
                        }

                        File.WriteAllBytes(file, b);
                        what = $"{count} zeros at {offset}";
                        break;
                    }

                    case "append":
                    {
                        var garbage = new byte[1 + random.Next(100)];
                        random.NextBytes(garbage);
                        File.WriteAllBytes(file, original.Concat(garbage).ToArray());
                        what = $"{garbage.Length} bytes appended";
                        break;
                    }

                    case "delete":
                        File.Delete(file);
                        what = "deleted";
                        break;
                    default:
                        File.Move(file, file + ".renamed");
                        what = "renamed";
                        break;
                }

                var result = BackupVerifier.Verify(backup.Path);
                var errors = result.Findings.Where(f => f.Severity == FindingSeverity.Error).ToList();
                Assert.False(result.Healthy, $"case {i}: {kind} ({what}) in {Path.GetFileName(file)} was not detected");
                Assert.True(errors.Any(f => f.File == file),
                    $"case {i}: {kind} ({what}) in {file} was detected but not attributed to it: " + string.Join(" | ", errors));

                if (kind == "rename")
                {
                    File.Move(file + ".renamed", file);
                }
                else
                {
                    File.WriteAllBytes(file, original);
                }

                Assert.True(BackupVerifier.Verify(backup.Path).Healthy, $"case {i}: not clean after the file was put back");
                byKind[kind] = byKind.TryGetValue(kind, out int n) ? n + 1 : 1;
            }

            _output.WriteLine(string.Join(", ", byKind.Select(kv => $"{kv.Key}={kv.Value}")));
        }

        [Fact]
        public void VerifyAll_ReportsEachBackupOfTheStore()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = BackupFixture.NewStore(store))
            {
                BackupFixture.Publish(s, 40);
            }

            var a = StoreBackup.Create(store);
            var b = StoreBackup.Create(store, new BackupOptions { Destination = dir.Combine("other") });
            Directory.CreateDirectory(Path.Combine(store, "backups", "." + BackupLayoutName() + ".tmp")); // an interrupted backup

            var results = BackupVerifier.VerifyAll(store);

            Assert.Equal(3, results.Count);
            Assert.True(results.Single(r => r.Name == a.Name).Healthy);
            Assert.True(results.Single(r => r.Name == b.Name).Healthy);
            var incomplete = results.Single(r => !r.Healthy);
            Assert.Equal(BackupFindingCodes.Incomplete, incomplete.Findings.Single().Code);
            Assert.Contains(BackupCatalog.List(store), x => x.State == BackupState.Unverified);
        }

        private static string BackupLayoutName() => "20200101T000000000Z-abcdef";
    }
}
