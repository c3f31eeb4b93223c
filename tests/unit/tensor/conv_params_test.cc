#include "runtime/tensor/conv_params.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

TEST(WindowAxisTest, SameMatchesTensorFlow) {
  // in, window, stride -> out, pad before, pad after (tf.nn.conv2d padding="SAME").
  struct Case {
    int64_t in, window, stride;
    WindowAxis want;
  };
  for (const Case& c :
       {Case{28, 3, 1, {28, 1, 1}}, Case{28, 3, 2, {14, 0, 1}}, Case{5, 3, 2, {3, 1, 1}},
        Case{6, 2, 1, {6, 0, 1}}, Case{5, 1, 2, {3, 0, 0}}, Case{3, 5, 1, {3, 2, 2}},
        Case{7, 4, 3, {3, 1, 2}}, Case{28, 2, 2, {14, 0, 0}}}) {
    absl::StatusOr<WindowAxis> got = InferWindowAxis("h", c.in, c.window, c.stride, Padding::kSame);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, c.want) << "in " << c.in << " window " << c.window << " stride " << c.stride
                            << ": got " << got->out << " " << got->pad_before << "/"
                            << got->pad_after;
  }
}

TEST(WindowAxisTest, ValidMatchesTensorFlow) {
  struct Case {
    int64_t in, window, stride, out;
  };
  for (const Case& c : {Case{28, 3, 1, 26}, Case{7, 3, 2, 3}, Case{8, 3, 2, 3}, Case{4, 4, 1, 1},
                        Case{28, 2, 2, 14}, Case{27, 2, 2, 13}}) {
    absl::StatusOr<WindowAxis> got =
        InferWindowAxis("h", c.in, c.window, c.stride, Padding::kValid);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, (WindowAxis{c.out, 0, 0})) << "in " << c.in << " window " << c.window;
  }
}

TEST(Conv2DParamsTest, InfersShapes) {
  Conv2DParams p{.batch = 128,
                 .height = 28,
                 .width = 28,
                 .in_channels = 1,
                 .out_channels = 32,
                 .filter_height = 3,
                 .filter_width = 3,
                 .stride_height = 2,
                 .stride_width = 1,
                 .padding = Padding::kSame};
  absl::StatusOr<Conv2DGeometry> g = InferConv2D(p);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->input_shape(), (Shape{128, 28, 28, 1}));
  EXPECT_EQ(g->filter_shape(), (Shape{3, 3, 1, 32}));
  EXPECT_EQ(g->bias_shape(), (Shape{32}));
  EXPECT_EQ(g->output_shape(), (Shape{128, 14, 28, 32}));
  EXPECT_EQ(g->rows, (WindowAxis{14, 0, 1}));
  EXPECT_EQ(g->cols, (WindowAxis{28, 1, 1}));
}

TEST(Conv2DParamsTest, EmptyBatchIsAllowed) {
  absl::StatusOr<Conv2DGeometry> g = InferConv2D({.batch = 0,
                                                  .height = 5,
                                                  .width = 5,
                                                  .in_channels = 1,
                                                  .out_channels = 1,
                                                  .filter_height = 3,
                                                  .filter_width = 3});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->output_shape(), (Shape{0, 3, 3, 1}));
}

TEST(Conv2DParamsTest, ErrorsNameTheField) {
  const Conv2DParams good{.batch = 2,
                          .height = 5,
                          .width = 3,
                          .in_channels = 1,
                          .out_channels = 4,
                          .filter_height = 3,
                          .filter_width = 3};
  ASSERT_TRUE(InferConv2D(good).ok());
  struct Case {
    Conv2DParams params;
    const char* message;
  };
  Conv2DParams wide = good;
  wide.filter_width = 5;
  Conv2DParams no_stride = good;
  no_stride.stride_height = 0;
  Conv2DParams no_channels = good;
  no_channels.in_channels = 0;
  Conv2DParams no_filters = good;
  no_filters.out_channels = -1;
  Conv2DParams negative_batch = good;
  negative_batch.batch = -1;
  for (const Case& c : {Case{wide, "conv2d width: window 5 exceeds size 3 with padding valid"},
                        Case{no_stride, "conv2d: stride_height must be positive, got 0"},
                        Case{no_channels, "conv2d: in_channels must be positive, got 0"},
                        Case{no_filters, "conv2d: out_channels must be positive, got -1"},
                        Case{negative_batch, "conv2d: batch must not be negative, got -1"}}) {
    absl::StatusOr<Conv2DGeometry> g = InferConv2D(c.params);
    ASSERT_FALSE(g.ok()) << c.message;
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(g.status().message(), HasSubstr(c.message));
  }
  // `same` pads a filter larger than the input.
  wide.padding = Padding::kSame;
  EXPECT_TRUE(InferConv2D(wide).ok());
}

TEST(Pool2DParamsTest, InfersAndValidates) {
  Pool2DParams p{.batch = 3,
                 .height = 7,
                 .width = 28,
                 .channels = 32,
                 .window_height = 2,
                 .window_width = 2,
                 .stride_height = 2,
                 .stride_width = 2};
  absl::StatusOr<Pool2DGeometry> g = InferPool2D(p);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->output_shape(), (Shape{3, 3, 14, 32}));
  p.padding = Padding::kSame;
  g = InferPool2D(p);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->output_shape(), (Shape{3, 4, 14, 32}));
  EXPECT_EQ(g->rows, (WindowAxis{4, 0, 1}));

  p.window_width = 0;
  EXPECT_THAT(InferPool2D(p).status().message(),
              HasSubstr("pool2d: window_width must be positive, got 0"));
  p.window_width = 2;
  p.padding = Padding::kValid;
  p.window_height = 8;
  EXPECT_THAT(InferPool2D(p).status().message(),
              HasSubstr("pool2d height: window 8 exceeds size 7 with padding valid"));
}

TEST(PaddingTest, Names) {
  EXPECT_EQ(PaddingName(Padding::kSame), "same");
  EXPECT_EQ(PaddingName(Padding::kValid), "valid");
}

}  // namespace
}  // namespace meshtrain
