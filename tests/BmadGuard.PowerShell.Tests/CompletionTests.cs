using System;
using System.IO;
using BmadGuard.Completion;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;
using Xunit;

namespace BmadGuard.Tests.PowerShell
{
    /// <summary>What -Type/-Source tab completion offers: names from the newest events, never an error.</summary>
    public sealed class CompletionTests : IDisposable
    {
        private readonly string _dir = Path.Combine(Path.GetTempPath(), "bmadguard-ps-tests", Guid.NewGuid().ToString("N"));

        public void Dispose()
        {
            try
            {
                Directory.Delete(_dir, true);
            }
            catch (IOException)
            {
            }
        }

        [Fact]
        public void Offers_the_types_and_sources_of_the_newest_segment()
        {
            // Small segments: the old events roll into earlier segments and are not read.
            using (var store = FileEventStore.Initialize(_dir, new StoreSettings { SegmentMaxBytes = 4096, MaxEventBytes = 1024 }, null, out _))
            {
                for (int i = 0; i < 40; i++)
                {
                    store.Publish(EventDraft.FromJson("old.type", "old-agent", null, "{\"pad\":\"" + new string('x', 100) + "\"}"));
                }

                store.Publish(EventDraft.FromJson("story.created", "architect", null, "{}"));
                store.Publish(EventDraft.FromJson("story.reviewed", "qa", null, "{}"));
            }

            Assert.True(Directory.GetFiles(Path.Combine(_dir, "segments")).Length > 1);
            var types = RecentEventNames.Names(_dir, r => r.Type);
            Assert.Contains("story.created", types);
            Assert.Contains("story.reviewed", types);
            Assert.Contains("qa", RecentEventNames.Names(_dir, r => r.Source));
            Assert.True(types.Count <= 3); // only what is in the newest segment (which may hold a few old ones)
        }

        [Fact]
        public void A_missing_or_damaged_store_completes_nothing_and_does_not_throw()
        {
            Assert.Empty(RecentEventNames.Names(Path.Combine(_dir, "nothing-here"), r => r.Type));

            Directory.CreateDirectory(_dir);
            File.WriteAllText(Path.Combine(_dir, StorePaths.MetaFileName), "{ not json");
            Assert.Empty(RecentEventNames.Names(_dir, r => r.Type));
        }
    }
}
