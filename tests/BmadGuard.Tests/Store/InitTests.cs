using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading.Tasks;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Store
{
    public sealed class InitTests
    {
        private static bool Created(Support.Cli.Result r)
        {
            Assert.True(r.ExitCode == 0, r.StdErr);
            using var doc = JsonDocument.Parse(r.StdOut);
            return doc.RootElement.GetProperty("created").GetBoolean();
        }

        [Fact]
        public void Init_creates_once_confirms_after_and_refuses_what_is_not_a_store()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            Assert.True(Created(Support.Cli.Run("init", "--store", store)));
            Assert.Equal(0, Support.Cli.Run("publish", "--store", store, "--type", "a.b", "--data", "{\"marker\":\"x\"}").ExitCode);
            var before = StoreInspector.SnapshotSegments(store);
            Assert.False(Created(Support.Cli.Run("init", "--store", store)));
            StoreInspector.AssertUnchanged(before, store);

            string other = dir.Combine("other");
            Directory.CreateDirectory(other);
            File.WriteAllText(Path.Combine(other, "notes.txt"), "mine");
            var refused = Support.Cli.Run("init", "--store", other);
            Assert.Equal(2, refused.ExitCode);
            Assert.StartsWith("bmadguard: InvalidArgument: ", refused.StdErr);
            Assert.Equal(new[] { "notes.txt" }, Directory.GetFileSystemEntries(other).Select(Path.GetFileName));

            var badSettings = Support.Cli.Run("init", "--store", dir.Combine("bad"), "--segment-max-bytes", "4096");
            Assert.Equal(2, badSettings.ExitCode); // smaller than the 1 MiB default --max-event-bytes
            Assert.StartsWith("bmadguard: InvalidArgument: ", badSettings.StdErr);
            Assert.False(Directory.Exists(dir.Combine("bad")));
        }

        [Fact]
        public async Task Concurrent_inits_of_one_store_all_succeed_and_exactly_one_creates_it()
        {
            for (int round = 0; round < 6; round++)
            {
                using var dir = new TempDir();
                string store = dir.Combine("store");
                var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => Support.Cli.Run("init", "--store", store))));
                Assert.All(results, r => Assert.True(r.ExitCode == 0, r.StdErr));
                Assert.Equal(1, results.Count(Created));
                Assert.Single(Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl"));
                Assert.Empty(StoreInspector.AssertClean(store));
            }
        }
    }
}
