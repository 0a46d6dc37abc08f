using System.Collections.Generic;
using System.IO;
using System.Linq;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Integrity
{
    public sealed class MetadataFlipTests
    {
        /// <summary>Every single-bit flip of every byte of the settings and consumer files is detected, naming the file.</summary>
        [Fact]
        public void EverySingleBitFlipInSettingsAndConsumerFilesIsDetected()
        {
            using var dir = new TempDir();
            string root = dir.Combine("s");
            using (var store = FileEventStore.Initialize(root, null, null, out _))
            {
                store.Publish(BmadGuard.Core.Events.EventDraft.FromJson("a.b", "x", null, "{}"));
                store.CommitConsumer("qa-1", 1);
            }

            var missed = new List<string>();
            foreach (string file in new[] { Path.Combine(root, StorePaths.MetaFileName), Path.Combine(root, "consumers", "qa-1.json") })
            {
                byte[] original = File.ReadAllBytes(file);
                for (int i = 0; i < original.Length; i++)
                {
                    for (int bit = 0; bit < 8; bit++)
                    {
                        var flipped = (byte[])original.Clone();
                        flipped[i] ^= (byte)(1 << bit);
                        File.WriteAllBytes(file, flipped);
                        var report = StoreVerifier.Verify(root);
                        if (!report.Findings.Any(f => f.Severity == FindingSeverity.Error && f.File == file))
                        {
                            missed.Add($"{Path.GetFileName(file)} byte {i} ('{(char)original[i]}') bit {bit}");
                        }
                    }
                }

                File.WriteAllBytes(file, original);
            }

            Assert.True(missed.Count == 0, string.Join("\n", missed.Take(40)));
        }
    }
}
