// tapegrad's MT19937-64 against std::mt19937_64: the same outputs, one at a time or in runs, and
// the same state text (libstdc++'s), so checkpoints written before it load.
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "tapegrad/layers/dropout.hpp"
#include "tapegrad/layers/init.hpp"

using namespace tapegrad;
using nn::Mt19937_64;

TEST_CASE("Mt19937_64: std::mt19937_64's outputs for a seed, drawn one by one or in runs") {
  for (std::uint64_t seed : {std::uint64_t(0), std::uint64_t(1), std::uint64_t(5489),
                             std::uint64_t(0x9e3779b97f4a7c15ull)}) {
    CAPTURE(seed);
    std::mt19937_64 reference(seed);
    Mt19937_64 ours(seed);
    // Runs of every length around the 312-word state, single draws between them.
    std::vector<std::uint64_t> run(1000);
    std::size_t mismatches = 0;
    for (std::size_t length : {1, 2, 311, 312, 313, 5, 624, 1000, 0, 97}) {
      ours.fill(run.data(), length);
      for (std::size_t i = 0; i < length; ++i) mismatches += run[i] != reference();
      mismatches += ours() != reference();
    }
    CHECK(mismatches == 0);
  }
  CHECK(Mt19937_64() == Mt19937_64(5489));  // the standard's default seed
}

TEST_CASE("Mt19937_64: its state text is libstdc++'s, both ways") {
  std::mt19937_64 reference(42);
  Mt19937_64 ours(42);
  for (int i = 0; i < 400; ++i) {  // past a twist, mid-state
    reference();
    ours();
  }
  std::ostringstream theirs_text, ours_text;
  theirs_text << reference;
  ours_text << ours;
  CHECK(ours_text.str() == theirs_text.str());
  Mt19937_64 read;
  std::istringstream(theirs_text.str()) >> read;
  CHECK(read == ours);
  CHECK(read() == reference());
  // A state cut short, or with an index past the state, is refused and changes nothing.
  Mt19937_64 kept(7);
  std::istringstream cut(theirs_text.str().substr(0, 100));
  cut >> kept;
  CHECK(cut.fail());
  CHECK(kept == Mt19937_64(7));
  std::string past = theirs_text.str();
  past = past.substr(0, past.rfind(' ')) + " 313";
  std::istringstream bad(past);
  bad >> kept;
  CHECK(bad.fail());
  CHECK(kept == Mt19937_64(7));
}

TEST_CASE("Dropout: each 64-bit draw decides two elements, high half first, on any length") {
  // The mask from the stream's draws, element by element as the rule says, for odd and even
  // counts and runs longer than one fill, over several seeds (an odd count's last element has
  // one draw's worth of chances to tell the halves apart).
  for (std::uint64_t seed = 1; seed <= 16; ++seed)
    for (std::size_t n : {1, 2, 7, 512, 513, 1001}) {
      CAPTURE(seed);
      CAPTURE(n);
      nn::Generator g(seed);
      nn::Dropout<double> drop(0.3, g);
      nn::Generator replay(seed);
      nn::Generator stream(static_cast<std::uint64_t>(replay.uniform() * 0x1.0p53));
      const Tensor<double> ones = Tensor<double>::ones({n});
      const Tensor<double> y = drop(Var<double>(ones)).value();
      const std::uint64_t threshold = static_cast<std::uint64_t>(std::ldexp(0.3, 32));
      std::size_t wrong = 0;
      for (std::size_t k = 0; k < n; k += 2) {
        const std::uint64_t r = stream.bits();
        wrong += y[k] != ((r >> 32) < threshold ? 0.0 : 1 / 0.7);
        if (k + 1 < n) wrong += y[k + 1] != ((r & 0xffffffffu) < threshold ? 0.0 : 1 / 0.7);
      }
      CHECK(wrong == 0);
    }
}
